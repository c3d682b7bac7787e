//! The origin's counters, for Prometheus: requests and bytes by resource kind, refusals by
//! reason, and the blocking requests held right now.
//!
//! Counted once per request in the router (relaxed atomics); read with
//! [`crate::Origin::stats`], whose reading writes the `fanout_hls_*` families and the origin's
//! part of `fanout_errors_total` in `/metrics` (`exposition.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::resource::{PlaylistKind, Resource};

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `master.m3u8`, `dvr.m3u8`, `vod.m3u8` of a stream.
    Multivariant,
    /// A rendition's live playlist without `_HLS_msn`.
    Playlist,
    /// A blocking playlist reload (`_HLS_msn`).
    BlockingPlaylist,
    /// A rendition's DVR or VOD playlist.
    DvrPlaylist,
    /// A part (`p{msn}.{i}.m4s`).
    Part,
    /// A segment (`s{msn}.m4s`).
    Segment,
    /// An init segment.
    Init,
}

impl RequestKind {
    /// Every kind (`kind as usize` indexes it).
    pub const ALL: [RequestKind; 7] = [
        RequestKind::Multivariant,
        RequestKind::Playlist,
        RequestKind::BlockingPlaylist,
        RequestKind::DvrPlaylist,
        RequestKind::Part,
        RequestKind::Segment,
        RequestKind::Init,
    ];

    /// The kind of a parsed request.
    pub fn of(resource: Resource, blocking: bool) -> Self {
        match resource {
            Resource::Multivariant(_) => Self::Multivariant,
            Resource::Media(PlaylistKind::Live) if blocking => Self::BlockingPlaylist,
            Resource::Media(PlaylistKind::Live) => Self::Playlist,
            Resource::Media(_) => Self::DvrPlaylist,
            Resource::Part(..) => Self::Part,
            Resource::Segment(_) => Self::Segment,
            Resource::Init(_) => Self::Init,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Multivariant => "multivariant",
            Self::Playlist => "playlist",
            Self::BlockingPlaylist => "blocking_playlist",
            Self::DvrPlaylist => "dvr_playlist",
            Self::Part => "part",
            Self::Segment => "segment",
            Self::Init => "init",
        }
    }
}

/// Why a request was refused (the `kind` label of `fanout_errors_total{source="hls"}`).
pub const ERROR_KINDS: [&str; 3] = ["bad_request", "not_found", "unavailable"];

/// Live counters of one origin.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: [AtomicU64; RequestKind::ALL.len()],
    bytes: [AtomicU64; RequestKind::ALL.len()],
    errors: [AtomicU64; ERROR_KINDS.len()],
    held: AtomicU64,
}

impl Stats {
    pub fn served(&self, kind: RequestKind, bytes: u64) {
        self.requests[kind as usize].fetch_add(1, Ordering::Relaxed);
        self.bytes[kind as usize].fetch_add(bytes, Ordering::Relaxed);
    }

    /// A refusal; `error` indexes [`ERROR_KINDS`]. Requests that could not be parsed have no
    /// kind and count only here.
    pub fn refused(&self, kind: Option<RequestKind>, error: usize) {
        if let Some(kind) = kind {
            self.requests[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.errors[error].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a blocking request as held until the guard drops.
    pub fn hold(&self) -> Held<'_> {
        self.held.fetch_add(1, Ordering::Relaxed);
        Held(&self.held)
    }

    pub fn snapshot(&self) -> OriginStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OriginStats {
            requests: RequestKind::ALL
                .iter()
                .map(|&k| (k, get(&self.requests[k as usize]), get(&self.bytes[k as usize])))
                .collect(),
            errors: ERROR_KINDS
                .iter()
                .zip(&self.errors)
                .map(|(k, n)| (*k, get(n)))
                .collect(),
            held: get(&self.held),
        }
    }
}

/// A blocking request waiting for its part (see [`Stats::hold`]).
pub(crate) struct Held<'a>(&'a AtomicU64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A reading of the origin's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginStats {
    /// Per kind: requests (served or refused) and body bytes served.
    pub requests: Vec<(RequestKind, u64, u64)>,
    /// Refusals by reason.
    pub errors: Vec<(&'static str, u64)>,
    /// Blocking requests waiting right now.
    pub held: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_bytes_refusals_and_held() {
        let stats = Stats::default();
        stats.served(RequestKind::Part, 1000);
        stats.served(RequestKind::Part, 500);
        stats.refused(Some(RequestKind::Segment), 1);
        stats.refused(None, 0);
        let held = stats.hold();
        assert_eq!(stats.snapshot().held, 1);
        drop(held);
        let s = stats.snapshot();
        assert_eq!(s.held, 0);
        assert!(s.requests.contains(&(RequestKind::Part, 2, 1500)));
        assert!(s.requests.contains(&(RequestKind::Segment, 1, 0)));
        assert_eq!(
            s.errors,
            [("bad_request", 1), ("not_found", 1), ("unavailable", 0)]
        );
        for (i, k) in RequestKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }
}
