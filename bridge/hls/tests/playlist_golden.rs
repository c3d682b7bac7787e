//! The playlist writers against golden files in `bridge/hls/golden/`.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the files after an intended change, then review the
//! diff: the golden files are the reviewed form of what players receive.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hls::multivariant::{MultivariantPlaylist, VariantInfo};
use hls::playlist::{MediaPlaylist, RenditionReport};
use hls::resource::PlaylistKind;
use hls::segment::{Part, Segment};
use hls::track::TrackKind;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

/// 2026-05-01T12:00:00Z
fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_777_636_800)
}

fn part(msn: u64, index: u32) -> Part {
    Part {
        msn,
        index,
        duration: Duration::from_millis(200),
        independent: index == 0,
        data: Bytes::from_static(b"part"),
    }
}

/// Segment `msn` of 2 s (10 parts), in source generation `generation`.
fn segment(msn: u64, generation: u32, discontinuity: bool) -> Arc<Segment> {
    Arc::new(Segment {
        msn,
        duration: Duration::from_secs(2),
        program_date_time: epoch() + Duration::from_secs(2 * msn),
        discontinuity,
        discontinuity_sequence: u64::from(generation),
        generation,
        parts: (0..10).map(|i| part(msn, i)).collect(),
        data: Bytes::from_static(b"segment"),
        size: 500_000,
        gap: false,
    })
}

fn open(msn: u64, parts: u32) -> Segment {
    let mut s = Arc::unwrap_or_clone(segment(msn, 0, false));
    s.parts.truncate(parts as usize);
    s.duration = Duration::from_millis(200) * parts;
    s
}

fn reports() -> Vec<RenditionReport> {
    vec![
        RenditionReport {
            name: "480p".into(),
            last_msn: 105,
            last_part: 2,
        },
        RenditionReport {
            name: "audio".into(),
            last_msn: 105,
            last_part: 1,
        },
    ]
}

fn live<'a>(
    segments: &'a [Arc<Segment>],
    open: Option<&'a Segment>,
    reports: &'a [RenditionReport],
) -> MediaPlaylist<'a> {
    MediaPlaylist {
        kind: PlaylistKind::Live,
        target_duration: 2,
        part_target: Duration::from_millis(200),
        segments,
        open,
        preload_hint: open.map(|o| (o.msn, o.parts.len() as u32)),
        reports,
        skip: false,
        ended: false,
        parts: true,
    }
}

#[test]
fn live_playlist() {
    let segments: Vec<_> = (100..105).map(|m| segment(m, 0, false)).collect();
    let open = open(105, 3);
    let reports = reports();
    golden("live.m3u8", &live(&segments, Some(&open), &reports).to_text());
}

#[test]
fn live_playlist_without_parts() {
    // lowLatencyMode off: whole segments only, for players and CDNs that want plain HLS.
    let segments: Vec<_> = (100..105).map(|m| segment(m, 0, false)).collect();
    let open = open(105, 3);
    let reports = reports();
    let mut playlist = live(&segments, Some(&open), &reports);
    playlist.parts = false;
    let text = playlist.to_text();
    for tag in [
        "#EXT-X-PART",
        "PART-HOLD-BACK",
        "#EXT-X-PRELOAD-HINT",
        "#EXT-X-RENDITION-REPORT",
    ] {
        assert!(!text.contains(tag), "{tag} in a playlist without parts:\n{text}");
    }
    golden("live_no_parts.m3u8", &text);
}

#[test]
fn live_playlist_right_after_a_segment_ends() {
    let segments: Vec<_> = (100..105).map(|m| segment(m, 0, false)).collect();
    let mut playlist = live(&segments, None, &[]);
    playlist.preload_hint = Some((105, 0));
    golden("live_segment_end.m3u8", &playlist.to_text());
}

#[test]
fn live_delta_update() {
    let segments: Vec<_> = (100..112).map(|m| segment(m, 0, false)).collect();
    let open = open(112, 1);
    let reports = reports();
    let mut playlist = live(&segments, Some(&open), &reports);
    playlist.skip = true;
    // Of 24.2 s, the segments that end 12 s or more before the end go: 100..=105.
    assert_eq!(playlist.skipped_segments(), 6);
    golden("live_delta.m3u8", &playlist.to_text());
}

#[test]
fn delta_update_of_a_short_playlist_skips_nothing() {
    let segments: Vec<_> = (0..4).map(|m| segment(m, 0, false)).collect();
    let mut playlist = live(&segments, None, &[]);
    playlist.skip = true;
    assert_eq!(playlist.skipped_segments(), 0);
    assert!(!playlist.to_text().contains("EXT-X-SKIP"));
}

#[test]
fn live_playlist_across_a_source_change() {
    let segments = vec![
        segment(20, 0, false),
        segment(21, 0, false),
        segment(22, 1, true),
        segment(23, 1, false),
    ];
    let mut open = open(24, 2);
    open.generation = 1;
    open.discontinuity_sequence = 1;
    golden(
        "live_discontinuity.m3u8",
        &live(&segments, Some(&open), &[]).to_text(),
    );
    // Once the old generation slides out, the sequence says how many discontinuities went.
    let later = vec![segment(22, 1, true), segment(23, 1, false)];
    let text = live(&later, None, &[]).to_text();
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    assert!(text.contains("#EXT-X-MAP:URI=\"init1.mp4\"\n"));
}

#[test]
fn ended_live_playlist() {
    let segments: Vec<_> = (7..10).map(|m| segment(m, 0, false)).collect();
    let mut playlist = live(&segments, None, &[]);
    playlist.preload_hint = Some((10, 0));
    playlist.ended = true;
    golden("live_ended.m3u8", &playlist.to_text());
}

#[test]
fn dvr_playlist() {
    let mut segments: Vec<_> = (40..44)
        .map(|m| Arc::new(segment(m, 0, false).without_media()))
        .collect();
    let mut gap = Arc::unwrap_or_clone(segments.remove(2));
    gap.gap = true;
    segments.insert(2, Arc::new(gap));
    let playlist = MediaPlaylist {
        kind: PlaylistKind::Dvr,
        target_duration: 2,
        part_target: Duration::from_millis(200),
        segments: &segments,
        open: None,
        preload_hint: None,
        reports: &[],
        skip: true,
        ended: false,
        parts: true,
    };
    golden("dvr.m3u8", &playlist.to_text());
}

#[test]
fn vod_playlist() {
    let segments = vec![segment(0, 0, false), segment(1, 0, false), segment(2, 1, true)];
    let playlist = MediaPlaylist {
        kind: PlaylistKind::Vod,
        target_duration: 2,
        part_target: Duration::from_millis(200),
        segments: &segments,
        open: None,
        preload_hint: None,
        reports: &[],
        skip: false,
        ended: true,
        parts: true,
    };
    golden("vod.m3u8", &playlist.to_text());
}

fn ladder() -> Vec<VariantInfo> {
    let video = |height: u32, codec: &str, bitrate: u64| VariantInfo {
        name: format!("{height}p"),
        kind: TrackKind::Video {
            width: height * 16 / 9,
            height,
            frame_rate: (30, 1),
        },
        codec: codec.into(),
        peak_bitrate: bitrate * 11 / 10,
        average_bitrate: bitrate,
    };
    vec![
        video(720, "avc1.64001f", 3_000_000),
        video(480, "avc1.64001e", 1_500_000),
        video(360, "avc1.64001e", 800_000),
        VariantInfo {
            name: "audio".into(),
            kind: TrackKind::Audio {
                sample_rate: 48_000,
                channels: 2,
            },
            codec: "mp4a.40.2".into(),
            peak_bitrate: 130_000,
            average_bitrate: 128_000,
        },
    ]
}

#[test]
fn multivariant_playlists() {
    let renditions = ladder();
    for (kind, name) in [
        (PlaylistKind::Live, "master.m3u8"),
        (PlaylistKind::Dvr, "master_dvr.m3u8"),
        (PlaylistKind::Vod, "master_vod.m3u8"),
    ] {
        golden(
            name,
            &MultivariantPlaylist {
                renditions: &renditions,
                kind,
            }
            .to_text(),
        );
    }
    let audio_only = &renditions[3..];
    golden(
        "master_audio_only.m3u8",
        &MultivariantPlaylist {
            renditions: audio_only,
            kind: PlaylistKind::Live,
        }
        .to_text(),
    );
}
