//! Stream health: how the publisher's media arrives (from the SFU's home worker), as JSON in
//! the stream resource and as the `fanout_ingest_*` families of `/metrics`.

use std::fmt;

use fanout_metrics::family::gauges;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use serde_json::{Value, json};
use sfu::{HealthReport, TrackHealth};

use crate::lifecycle::Status;
use crate::state::AppState;

fn track_name(t: &TrackHealth) -> String {
    match (&t.kind, &t.rid) {
        (sfu::MediaKind::Audio, _) => "audio".into(),
        (sfu::MediaKind::Video, Some(rid)) => format!("video/{rid}"),
        (sfu::MediaKind::Video, None) => "video".into(),
    }
}

/// The `health` object of a live stream's resource.
pub(crate) fn to_json(report: &HealthReport) -> Value {
    let tracks: Vec<Value> = report
        .tracks
        .iter()
        .map(|t| {
            json!({
                "track": track_name(t),
                "bitrateBps": t.bitrate_bps,
                "fps": (t.kind == sfu::MediaKind::Video).then(|| (t.fps * 10.0).round() / 10.0),
                "keyframeIntervalMs": t.keyframe_interval.map(|d| d.as_millis() as u64),
                "loss": (t.loss * 10_000.0).round() / 10_000.0,
                "jitterMs": (t.jitter_ms * 10.0).round() / 10.0,
                "idleMs": t.idle.as_millis() as u64,
                "warnings": t.warnings,
            })
        })
        .collect();
    let warnings = report.warnings();
    json!({ "ok": warnings.is_empty(), "warnings": warnings, "tracks": tracks })
}

/// The health of a stream that is live with a publisher here, else `None`.
pub(crate) async fn of(state: &AppState, id: &str, status: Status) -> Option<HealthReport> {
    if status != Status::Live {
        return None;
    }
    state.sfu.stream_health(id).await.ok().flatten()
}

/// Every live stream's health, as its home worker reported it for one scrape.
#[derive(Debug)]
pub(crate) struct IngestHealth(Vec<(String, HealthReport)>);

impl IngestHealth {
    /// Asks each live stream's worker (the reason `/metrics` builds its registry per scrape: a
    /// collector cannot wait).
    /// Every live stream's, or (`public_only`) only the public streams'.
    pub(crate) async fn read(state: &AppState, public_only: bool) -> Self {
        let live = state.streams.live();
        let mut rows = Vec::with_capacity(live.len());
        for id in live {
            if public_only && state.private.contains(&id) {
                continue;
            }
            if let Some(r) = of(state, &id, Status::Live).await {
                rows.push((id, r));
            }
        }
        IngestHealth(rows)
    }
}

impl Collector for IngestHealth {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        type Getter = fn(&TrackHealth) -> f64;
        let series: [(&str, &str, Getter); 5] = [
            (
                "fanout_ingest_bitrate_bps",
                "Publisher payload bitrate per track, last second.",
                |t| t.bitrate_bps as f64,
            ),
            (
                "fanout_ingest_fps",
                "Publisher video frame rate per layer, last second.",
                |t| t.fps,
            ),
            (
                "fanout_ingest_loss_ratio",
                "Publisher packets lost per track, last second.",
                |t| t.loss,
            ),
            (
                "fanout_ingest_jitter_seconds",
                "Publisher interarrival jitter per track (RFC 3550).",
                |t| t.jitter_ms / 1000.0,
            ),
            (
                "fanout_ingest_keyframe_interval_seconds",
                "Between the publisher's last two keyframes per layer.",
                |t| t.keyframe_interval.map_or(f64::NAN, |d| d.as_secs_f64()),
            ),
        ];
        for (name, help, get) in series {
            let samples = self.0.iter().flat_map(|(stream, report)| {
                report.tracks.iter().filter_map(move |t| {
                    let v = get(t);
                    // No sample rather than NaN: audio has no keyframes.
                    (!v.is_nan()).then(|| ([("stream", stream.clone()), ("track", track_name(t))], v))
                })
            });
            gauges(&mut e, name, help, samples)?;
        }
        gauges(
            &mut e,
            "fanout_ingest_warnings",
            "Health warnings of each live stream.",
            self.0
                .iter()
                .map(|(stream, report)| ([("stream", stream.as_str())], report.warnings().len() as u64)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report() -> HealthReport {
        HealthReport {
            tracks: vec![
                TrackHealth {
                    kind: sfu::MediaKind::Video,
                    rid: Some("f".into()),
                    bitrate_bps: 2_500_000,
                    fps: 29.97,
                    keyframe_interval: Some(Duration::from_secs(2)),
                    loss: 0.0,
                    jitter_ms: 3.25,
                    idle: Duration::from_millis(12),
                    warnings: Vec::new(),
                },
                TrackHealth {
                    kind: sfu::MediaKind::Audio,
                    rid: None,
                    bitrate_bps: 64_000,
                    fps: 0.0,
                    keyframe_interval: None,
                    loss: 0.05,
                    jitter_ms: 1.0,
                    idle: Duration::from_millis(5),
                    warnings: vec!["5.0% packet loss".into()],
                },
            ],
            delivery: vec!["media worker 1 cannot keep up".into()],
        }
    }

    #[test]
    fn json_names_tracks_and_collects_warnings() {
        let v = to_json(&report());
        assert_eq!(v["ok"], false);
        assert_eq!(
            v["warnings"],
            json!([
                "audio: 5.0% packet loss",
                "delivery: media worker 1 cannot keep up"
            ])
        );
        assert_eq!(v["tracks"][0]["track"], "video/f");
        assert_eq!(v["tracks"][0]["fps"], 30.0);
        assert_eq!(v["tracks"][0]["keyframeIntervalMs"], 2000);
        assert_eq!(v["tracks"][1]["keyframeIntervalMs"], Value::Null);
        assert_eq!(v["tracks"][1]["fps"], Value::Null, "audio has no frame rate");
    }

    #[test]
    fn exposition_has_a_series_per_track() {
        let mut exposition = fanout_metrics::Exposition::default();
        exposition.add(IngestHealth(vec![("s1".into(), report())]));
        let out = exposition.encode();
        assert!(out.contains("# TYPE fanout_ingest_bitrate_bps gauge\n"), "{out}");
        assert!(
            out.contains("fanout_ingest_bitrate_bps{stream=\"s1\",track=\"video/f\"} 2500000.0\n"),
            "{out}"
        );
        assert!(
            out.contains("fanout_ingest_loss_ratio{stream=\"s1\",track=\"audio\"} 0.05\n"),
            "{out}"
        );
        assert!(
            out.contains("fanout_ingest_keyframe_interval_seconds{stream=\"s1\",track=\"video/f\"} 2.0\n")
        );
        assert!(!out.contains("keyframe_interval_seconds{stream=\"s1\",track=\"audio\"}"));
        assert!(out.contains("fanout_ingest_warnings{stream=\"s1\"} 2\n"));
    }
}
