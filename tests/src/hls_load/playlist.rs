//! What a player reads from the playlists: the renditions of the multivariant playlist, and
//! the parts, the preload hint and the next blocking-reload position of a media playlist.
//!
//! Positions come from the playlist's structure (media sequence, skipped segments, EXTINF and
//! EXT-X-PART lines), not from the server's file names.

/// A part listed in a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Media sequence number of the segment it belongs to.
    pub msn: u64,
    /// Its index within the segment.
    pub index: u32,
    /// Its URI, relative to the playlist.
    pub uri: String,
    /// When its media ends, from PROGRAM-DATE-TIME: milliseconds since the Unix epoch.
    pub end_ms: Option<f64>,
}

/// The parts of an LL-HLS media playlist that a live player uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    /// EXT-X-MAP URI (the last one listed).
    pub map: Option<String>,
    /// Every EXT-X-PART, oldest first.
    pub parts: Vec<Part>,
    /// EXT-X-PRELOAD-HINT TYPE=PART URI.
    pub preload_hint: Option<String>,
    /// Where the next part will be: `_HLS_msn` / `_HLS_part` of the next blocking reload.
    pub next: (u64, u32),
    /// EXT-X-ENDLIST was present.
    pub ended: bool,
    /// A delta update (EXT-X-SKIP).
    pub skipped: u64,
    /// EXT-X-PART-INF PART-TARGET, seconds.
    pub part_target: Option<f64>,
    /// Parts of the last complete segment that listed its parts.
    pub parts_per_segment: Option<u32>,
}

impl MediaPlaylist {
    /// The position `ahead` parts past [`next`](Self::next), rolling over into the following
    /// segments by the part count of the last complete segment.
    pub fn ahead(&self, ahead: u32) -> (u64, u32) {
        let (mut msn, mut part) = self.next;
        part += ahead;
        if let Some(per_segment) = self.parts_per_segment.filter(|&n| n > 0) {
            msn += u64::from(part / per_segment);
            part %= per_segment;
        }
        (msn, part)
    }
}

/// Reads a media playlist. Returns `None` if it is not one (no #EXTM3U or no media sequence).
pub fn parse_media(text: &str) -> Option<MediaPlaylist> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next()? != "#EXTM3U" {
        return None;
    }
    let mut playlist = MediaPlaylist::default();
    let mut sequence: Option<u64> = None;
    // The segment the next EXT-X-PART / EXTINF belongs to, and its parts so far.
    let mut msn = 0u64;
    let mut index = 0u32;
    let mut expect_uri = false;
    // Start of the current segment's media (PROGRAM-DATE-TIME), and of its next part.
    let mut segment_start: Option<f64> = None;
    let mut part_start: Option<f64> = None;
    let mut segment_duration = 0.0;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            let s = v.parse().ok()?;
            sequence = Some(s);
            msn = s;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-SKIP:") {
            let n: u64 = attribute(attrs, "SKIPPED-SEGMENTS")?.parse().ok()?;
            playlist.skipped = n;
            msn += n;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            playlist.map = attribute(v, "URI").map(str::to_owned);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART-INF:") {
            playlist.part_target = attribute(attrs, "PART-TARGET").and_then(|v| v.parse().ok());
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            segment_start = unix_ms(v);
            part_start = segment_start;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let uri = attribute(attrs, "URI")?.to_owned();
            let duration: f64 = attribute(attrs, "DURATION")?.parse().ok()?;
            let end_ms = part_start.map(|t| t + duration * 1e3);
            part_start = end_ms;
            playlist.parts.push(Part {
                msn,
                index,
                uri,
                end_ms,
            });
            index += 1;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            segment_duration = v.split(',').next()?.parse().ok()?;
            expect_uri = true;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            if attribute(attrs, "TYPE") == Some("PART") {
                playlist.preload_hint = attribute(attrs, "URI").map(str::to_owned);
            }
        } else if line == "#EXT-X-ENDLIST" {
            playlist.ended = true;
        } else if !line.starts_with('#') && expect_uri {
            expect_uri = false;
            if index > 0 {
                playlist.parts_per_segment = Some(index);
            }
            msn += 1;
            index = 0;
            segment_start = segment_start.map(|t| t + segment_duration * 1e3);
            part_start = segment_start;
        }
    }
    sequence?;
    playlist.next = (msn, index);
    Some(playlist)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` as milliseconds since the Unix epoch.
pub fn unix_ms(text: &str) -> Option<f64> {
    let (date, time) = text.trim().split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|v| v.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset_min) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?),
        )
    };
    let mut hms = clock.splitn(3, ':');
    let hours: i64 = hms.next()?.parse().ok()?;
    let minutes: i64 = hms.next()?.parse().ok()?;
    let seconds: f64 = hms.next()?.parse().ok()?;
    // Days from civil (proleptic Gregorian), after H. Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let minutes_total = days * 1440 + hours * 60 + minutes - offset_min;
    Some(minutes_total as f64 * 60_000.0 + seconds * 1e3)
}

/// The media playlist URIs of a multivariant playlist: every EXT-X-STREAM-INF's URI, then every
/// EXT-X-MEDIA URI (audio), in order and without repeats.
pub fn parse_multivariant(text: &str) -> Vec<String> {
    let mut variants = Vec::new();
    let mut media = Vec::new();
    let mut next_is_variant = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("#EXT-X-STREAM-INF:") {
            next_is_variant = true;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MEDIA:") {
            if let Some(uri) = attribute(attrs, "URI") {
                media.push(uri.to_owned());
            }
        } else if !line.starts_with('#') && next_is_variant {
            next_is_variant = false;
            variants.push(line.to_owned());
        }
    }
    let mut all = Vec::new();
    for uri in variants.into_iter().chain(media) {
        if !all.contains(&uri) {
            all.push(uri);
        }
    }
    all
}

/// The value of `NAME=` in an attribute list, quotes removed.
fn attribute<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attrs;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, t)) => (v, t),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = tail;
    }
    None
}

/// Resolves a URI of a playlist at `base_path` (an absolute path) to an absolute path.
/// Handles the relative forms the origin writes (`x`, `../r/x`) and absolute paths.
pub fn resolve(base_path: &str, uri: &str) -> String {
    if uri.starts_with('/') {
        return uri.to_owned();
    }
    let dir = base_path.split('?').next().unwrap_or(base_path);
    let mut segments: Vec<&str> = dir.split('/').collect();
    segments.pop();
    for piece in uri.split('/') {
        match piece {
            ".." => {
                if segments.len() > 1 {
                    segments.pop();
                }
            }
            "." => {}
            other => segments.push(other),
        }
    }
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_SEGMENT: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.60000
#EXT-X-PART-INF:PART-TARGET=0.20000
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-MAP:URI=\"init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-05-01T12:03:20.000Z
#EXTINF:2.00000,
s100.m4s
#EXT-X-PART:DURATION=0.20000,URI=\"p101.0.m4s\",INDEPENDENT=YES
#EXTINF:2.00000,
s101.m4s
#EXT-X-PART:DURATION=0.20000,URI=\"p102.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI=\"p102.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p102.2.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../480p/live.m3u8\",LAST-MSN=102,LAST-PART=1
";

    #[test]
    fn parts_are_numbered_by_their_segment() {
        let p = parse_media(OPEN_SEGMENT).expect("media playlist");
        assert_eq!(p.map.as_deref(), Some("init0.mp4"));
        let numbered: Vec<_> = p.parts.iter().map(|p| (p.msn, p.index)).collect();
        assert_eq!(numbered, vec![(101, 0), (102, 0), (102, 1)]);
        assert_eq!(p.next, (102, 2));
        assert_eq!(p.preload_hint.as_deref(), Some("p102.2.m4s"));
        assert!(!p.ended);
        assert_eq!(p.part_target, Some(0.2));
        assert_eq!(p.parts_per_segment, Some(1));
    }

    #[test]
    fn parts_end_at_their_program_date_time_plus_durations() {
        let p = parse_media(OPEN_SEGMENT).expect("media playlist");
        let t0 = unix_ms("2026-05-01T12:03:20.000Z").expect("date");
        let ends: Vec<_> = p.parts.iter().map(|p| p.end_ms.map(|e| e - t0)).collect();
        // s100 and s101 last 2 s each; p102.1 ends 0.4 s into s102.
        let expected = [2200.0, 4200.0, 4400.0];
        for (end, want) in ends.iter().zip(expected) {
            assert!((end.expect("dated") - want).abs() < 1e-6, "{ends:?}");
        }
    }

    #[test]
    fn dates_parse_to_unix_time() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(unix_ms("2000-03-01T00:00:01.500Z"), Some(951_868_801_500.0));
        assert_eq!(unix_ms("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(unix_ms("garbage"), None);
    }

    #[test]
    fn after_a_complete_segment_the_next_part_opens_the_next_segment() {
        let text = "#EXTM3U
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-PART:DURATION=0.2,URI=\"p7.0.m4s\"
#EXT-X-PART:DURATION=0.2,URI=\"p7.1.m4s\"
#EXTINF:0.4,
s7.m4s
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p8.0.m4s\"
";
        let p = parse_media(text).expect("media playlist");
        assert_eq!(p.next, (8, 0));
        assert_eq!(p.parts.last().map(|p| (p.msn, p.index)), Some((7, 1)));
        assert_eq!(p.ahead(3), (9, 1));
    }

    #[test]
    fn skipped_segments_count_in_the_numbering() {
        let text = "#EXTM3U
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-SKIP:SKIPPED-SEGMENTS=5
#EXTINF:2.0,
s15.m4s
#EXT-X-PART:DURATION=0.2,URI=\"p16.0.m4s\"
";
        let p = parse_media(text).expect("media playlist");
        assert_eq!(p.skipped, 5);
        assert_eq!(p.parts[0].msn, 16);
        assert_eq!(p.next, (16, 1));
    }

    #[test]
    fn not_a_media_playlist() {
        assert_eq!(parse_media("not found\n"), None);
        assert_eq!(parse_media("#EXTM3U\n#EXTINF:2,\na\n"), None);
    }

    #[test]
    fn multivariant_lists_variants_then_audio() {
        let text = "#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",URI=\"audio/live.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=3000000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"
720p/live.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO=\"audio\"
360p/live.m3u8
";
        assert_eq!(
            parse_multivariant(text),
            vec!["720p/live.m3u8", "360p/live.m3u8", "audio/live.m3u8"]
        );
    }

    #[test]
    fn resolves_relative_uris() {
        assert_eq!(
            resolve("/hls/t/720p/live.m3u8?_HLS_msn=1", "p1.0.m4s"),
            "/hls/t/720p/p1.0.m4s"
        );
        assert_eq!(
            resolve("/hls/t/720p/live.m3u8", "../480p/live.m3u8"),
            "/hls/t/480p/live.m3u8"
        );
        assert_eq!(
            resolve("/hls/t/master.m3u8", "720p/live.m3u8"),
            "/hls/t/720p/live.m3u8"
        );
        assert_eq!(resolve("/hls/t/master.m3u8", "/x"), "/x");
    }
}
