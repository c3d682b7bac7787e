//! Runs the test source for a while into a counting sink and reports what it produced and
//! what it cost: `cargo run -p bridge --example test_source -- [seconds] [ultrafast|superfast|veryfast]`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bridge::test_source::{SpeedPreset, TestSource, TestSourceConfig};
use hls::{AccessUnit, MediaSink, TrackConfig};

#[derive(Default)]
struct Counts {
    tracks: Vec<String>,
    units: Vec<(usize, usize, usize)>, // access units, keyframes, bytes
}

struct CountingSink(Arc<Mutex<Counts>>);

impl MediaSink for CountingSink {
    fn start(&mut self, tracks: Vec<TrackConfig>, _anchor: SystemTime) {
        let mut c = self.0.lock().expect("counts lock");
        c.tracks = tracks
            .iter()
            .map(|t| match t {
                TrackConfig::H264 { width, height, .. } => format!("H.264 {width}x{height}"),
                TrackConfig::Aac {
                    sample_rate,
                    channels,
                    ..
                } => format!("AAC {sample_rate} Hz x{channels}"),
            })
            .collect();
        c.units = vec![(0, 0, 0); tracks.len()];
    }
    fn push(&mut self, track: usize, au: AccessUnit) {
        let mut c = self.0.lock().expect("counts lock");
        let u = &mut c.units[track];
        *u = (u.0 + 1, u.1 + usize::from(au.keyframe), u.2 + au.data.len());
    }
    fn finish(&mut self) {}
}

/// User + system CPU seconds of this process so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the stat line (utime, stime); 100 ticks per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let speed_preset = match args.next().as_deref() {
        Some("ultrafast") => SpeedPreset::Ultrafast,
        Some("superfast") => SpeedPreset::Superfast,
        _ => SpeedPreset::Veryfast,
    };
    let counts = Arc::new(Mutex::new(Counts::default()));
    let config = TestSourceConfig {
        speed_preset,
        ..TestSourceConfig::default()
    };
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let source = match TestSource::start(config, Box::new(CountingSink(counts.clone()))) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    std::thread::sleep(Duration::from_secs(seconds));
    let result = source.stop();
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    let c = counts.lock().expect("counts lock");
    println!("preset {}, {wall:.1} s", speed_preset.nick());
    for (name, (units, keyframes, bytes)) in c.tracks.iter().zip(&c.units) {
        let kbps = *bytes as f64 * 8.0 / wall / 1000.0;
        println!("  {name}: {units} access units, {keyframes} keyframes, {kbps:.0} kbit/s");
    }
    println!(
        "CPU {cpu:.2} s in {wall:.1} s = {:.0}% of one core",
        100.0 * cpu / wall
    );
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
