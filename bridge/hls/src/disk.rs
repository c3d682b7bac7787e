//! The disk writer: one thread that stores DVR segments, init segments and VOD playlists, and
//! deletes what falls out of the DVR window, so that no media thread or async task waits on
//! the file system.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use bytes::Bytes;

/// One thing for the writer to do.
#[derive(Debug)]
pub(crate) enum DiskJob {
    /// Write a file whole (through a temporary name, so readers never see half of it).
    Write(PathBuf, Bytes),
    /// Delete a file.
    Remove(PathBuf),
    /// Delete a directory and everything in it.
    RemoveDir(PathBuf),
}

/// The sending side of the writer thread (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct DiskWriter {
    tx: SyncSender<DiskJob>,
}

impl DiskWriter {
    /// Starts the writer thread with a queue of `capacity` jobs. The thread ends when the last
    /// `DiskWriter` is dropped, after finishing the queue.
    pub(crate) fn spawn(capacity: usize) -> io::Result<Self> {
        let (tx, rx) = sync_channel(capacity.max(1));
        std::thread::Builder::new()
            .name("hls-disk".into())
            .spawn(move || run(rx))?;
        Ok(Self { tx })
    }

    /// Queues a job unless the queue is full; false if it was dropped.
    pub(crate) fn try_send(&self, job: DiskJob) -> bool {
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(job)) => {
                tracing::warn!(?job, "disk queue full, job dropped");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queues a job, waiting for room (for the few jobs that must not be lost, like the VOD
    /// playlist at the end of a stream).
    pub(crate) fn send(&self, job: DiskJob) {
        if self.tx.send(job).is_err() {
            tracing::warn!("disk writer gone, job dropped");
        }
    }
}

fn run(rx: Receiver<DiskJob>) {
    while let Ok(job) = rx.recv() {
        let result = match &job {
            DiskJob::Write(path, data) => write_atomic(path, data),
            DiskJob::Remove(path) => std::fs::remove_file(path).or_else(not_found_is_ok),
            DiskJob::RemoveDir(path) => std::fs::remove_dir_all(path).or_else(not_found_is_ok),
        };
        if let Err(error) = result {
            tracing::warn!(?job, %error, "disk job failed");
        }
    }
}

fn not_found_is_ok(error: io::Error) -> io::Result<()> {
    if error.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(error)
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order() {
        let dir = std::env::temp_dir().join(format!("hls-disk-{}", std::process::id()));
        let top = dir.clone();
        let writer = DiskWriter::spawn(4).expect("spawn");
        let file = dir.join("a/b/c.m4s");
        writer.send(DiskJob::Write(file.clone(), Bytes::from_static(b"one")));
        writer.send(DiskJob::Write(file.clone(), Bytes::from_static(b"two")));
        writer.send(DiskJob::Remove(dir.join("missing")));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        writer.send(DiskJob::Write(dir.join("done"), Bytes::new()));
        std::thread::spawn(move || {
            while !dir.join("done").exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            done_tx
                .send(std::fs::read(&file).expect("file written"))
                .expect("send");
            writer.send(DiskJob::RemoveDir(dir));
        });
        let content = done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("writer finishes");
        assert_eq!(content, b"two");
        // The last job removes the whole directory.
        for _ in 0..2000 {
            if !top.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("{} still exists", top.display());
    }
}
