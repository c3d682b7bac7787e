//! The media playlist writer: pure, from segments to text.
//!
//! One writer serves the three flavours ([`PlaylistKind`]): the LL-HLS live playlist (server
//! control, parts of the last three target durations, preload hint, rendition reports, delta
//! updates), the sliding DVR playlist and the VOD playlist.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::resource::{PlaylistKind, Resource};
use crate::segment::Segment;

/// A sibling rendition's position, for EXT-X-RENDITION-REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// The sibling's name (its playlist is `../{name}/live.m3u8`).
    pub name: String,
    /// Media sequence number of its last part's segment.
    pub last_msn: u64,
    /// Index of its last part in that segment.
    pub last_part: u32,
}

/// Everything one media playlist says.
#[derive(Debug, Clone)]
pub struct MediaPlaylist<'a> {
    /// Live, DVR or VOD.
    pub kind: PlaylistKind,
    /// EXT-X-TARGETDURATION in seconds.
    pub target_duration: u32,
    /// PART-TARGET (live playlists only).
    pub part_target: Duration,
    /// Complete segments, oldest first.
    pub segments: &'a [Arc<Segment>],
    /// The segment still receiving parts (live playlists only), if it has any.
    pub open: Option<&'a Segment>,
    /// The next part, announced with EXT-X-PRELOAD-HINT (live playlists only).
    pub preload_hint: Option<(u64, u32)>,
    /// Sibling renditions (live playlists only).
    pub reports: &'a [RenditionReport],
    /// A delta update was asked for (`_HLS_skip=YES`).
    pub skip: bool,
    /// The stream ended: EXT-X-ENDLIST.
    pub ended: bool,
    /// List parts (LL-HLS); live playlists only.
    pub parts: bool,
}

impl MediaPlaylist<'_> {
    /// CAN-SKIP-UNTIL: six target durations.
    pub fn skip_until(&self) -> Duration {
        Duration::from_secs(6 * u64::from(self.target_duration))
    }

    /// How many leading segments a delta update leaves out: those that end at least
    /// CAN-SKIP-UNTIL before the end of the playlist.
    pub fn skipped_segments(&self) -> usize {
        if !self.skip || self.kind != PlaylistKind::Live {
            return 0;
        }
        let end = self.total_duration();
        let mut start = Duration::ZERO;
        let mut skipped = 0;
        for segment in self.segments {
            start += segment.duration;
            if end.saturating_sub(start) < self.skip_until() {
                break;
            }
            skipped += 1;
        }
        skipped
    }

    fn total_duration(&self) -> Duration {
        let open = self
            .open
            .map_or(Duration::ZERO, |o| o.parts.iter().map(|p| p.duration).sum());
        self.segments.iter().map(|s| s.duration).sum::<Duration>() + open
    }

    /// The preload hint, unless the stream ended.
    fn hint(&self) -> Option<(u64, u32)> {
        self.preload_hint
            .filter(|_| !self.ended && self.kind == PlaylistKind::Live)
    }

    fn version(&self) -> u32 {
        match self.kind {
            // CAN-SKIP-UNTIL and EXT-X-SKIP need version 9.
            PlaylistKind::Live => 9,
            // EXT-X-GAP needs 8; EXT-X-MAP in a playlist without I-frames needs 6.
            _ if self.segments.iter().any(|s| s.gap) => 8,
            _ => 6,
        }
    }

    /// Writes the playlist.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let live = self.kind == PlaylistKind::Live;
        let parts = live && self.parts;
        writeln!(w, "#EXTM3U")?;
        writeln!(w, "#EXT-X-VERSION:{}", self.version())?;
        writeln!(w, "#EXT-X-TARGETDURATION:{}", self.target_duration)?;
        let part_target = Seconds::ceil(self.part_target);
        if parts {
            writeln!(
                w,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={}",
                self.skip_until().as_secs_f64(),
                Seconds(part_target.0 * 3)
            )?;
            writeln!(w, "#EXT-X-PART-INF:PART-TARGET={part_target}")?;
        } else if live {
            writeln!(
                w,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1}",
                self.skip_until().as_secs_f64()
            )?;
        }
        if self.kind == PlaylistKind::Vod {
            writeln!(w, "#EXT-X-PLAYLIST-TYPE:VOD")?;
        }
        let first = self.segments.first().map(|s| s.as_ref()).or(self.open);
        let media_sequence = first.map_or_else(|| self.preload_hint.map_or(0, |(msn, _)| msn), |s| s.msn);
        writeln!(w, "#EXT-X-MEDIA-SEQUENCE:{media_sequence}")?;
        writeln!(
            w,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            first.map_or(0, |s| s.discontinuity_sequence)
        )?;

        let skipped = self.skipped_segments();
        if skipped > 0 {
            writeln!(w, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")?;
        }
        // Parts are listed for segments that start within three target durations of the end,
        // and for no more than the last three entries (the open segment, or the preload hint's,
        // counts as one), which is how strict validators read that rule.
        let parts_window = Duration::from_secs(3 * u64::from(self.target_duration));
        let open_entry = self.open.is_some_and(|o| !o.parts.is_empty()) || self.hint().is_some();
        let first_with_parts = self.segments.len().saturating_sub(if open_entry { 2 } else { 3 });
        let end = self.total_duration();
        let mut start = Duration::ZERO;
        let mut previous: Option<&Segment> = None;
        for (i, segment) in self.segments.iter().enumerate() {
            if i >= skipped {
                let with_parts = parts && i >= first_with_parts && end.saturating_sub(start) <= parts_window;
                self.write_segment_head(w, segment, previous, i == skipped)?;
                if with_parts {
                    self.write_parts(w, segment)?;
                }
                if segment.gap {
                    writeln!(w, "#EXT-X-GAP")?;
                }
                writeln!(w, "#EXTINF:{},", Seconds::floor(segment.duration))?;
                writeln!(w, "{}", Resource::Segment(segment.msn))?;
            }
            start += segment.duration;
            previous = Some(segment);
        }
        if parts {
            if let Some(open) = self.open.filter(|o| !o.parts.is_empty()) {
                self.write_segment_head(w, open, previous, self.segments.len() == skipped)?;
                self.write_parts(w, open)?;
            }
            if let Some((msn, part)) = self.hint() {
                writeln!(
                    w,
                    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                    Resource::Part(msn, part)
                )?;
            }
            // Reports tell LL-HLS clients where siblings' parts are; without parts, nothing.
            for report in self.reports {
                writeln!(
                    w,
                    "#EXT-X-RENDITION-REPORT:URI=\"../{}/{}\",LAST-MSN={},LAST-PART={}",
                    report.name,
                    Resource::Media(PlaylistKind::Live),
                    report.last_msn,
                    report.last_part
                )?;
            }
        }
        if self.ended || self.kind == PlaylistKind::Vod {
            writeln!(w, "#EXT-X-ENDLIST")?;
        }
        Ok(())
    }

    /// Tags before a segment's parts and EXTINF: discontinuity, init segment, date-time.
    fn write_segment_head<W: Write>(
        &self,
        w: &mut W,
        segment: &Segment,
        previous: Option<&Segment>,
        first_listed: bool,
    ) -> io::Result<()> {
        if segment.discontinuity && previous.is_some() {
            writeln!(w, "#EXT-X-DISCONTINUITY")?;
        }
        if first_listed || previous.is_none_or(|p| p.generation != segment.generation) {
            writeln!(w, "#EXT-X-MAP:URI=\"{}\"", Resource::Init(segment.generation))?;
        }
        writeln!(
            w,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            DateTime(segment.program_date_time)
        )
    }

    fn write_parts<W: Write>(&self, w: &mut W, segment: &Segment) -> io::Result<()> {
        for part in &segment.parts {
            write!(
                w,
                "#EXT-X-PART:DURATION={},URI=\"{}\"",
                Seconds::floor(part.duration),
                Resource::Part(part.msn, part.index)
            )?;
            if part.independent {
                write!(w, ",INDEPENDENT=YES")?;
            }
            writeln!(w)?;
        }
        Ok(())
    }

    /// The playlist as a string.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("playlists are written as UTF-8")
    }
}

/// A duration in units of 10 microseconds, written with five decimals.
#[derive(Debug, Clone, Copy)]
struct Seconds(u128);

impl Seconds {
    /// Rounded down, for media durations: a player that adds them up then never places the
    /// end of a part or segment after the end of the media it holds. Within a microsecond
    /// below a step counts as the step: that is a nanosecond conversion's truncation (1.984 s
    /// of 48 kHz audio summed as 1.983999999 s), not a shorter duration.
    fn floor(d: Duration) -> Self {
        Self((d.as_nanos() + 1_000) / 10_000)
    }

    /// Rounded up, for limits that real durations must not exceed once written.
    fn ceil(d: Duration) -> Self {
        Self(d.as_nanos().div_ceil(10_000))
    }
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:05}", self.0 / 100_000, self.0 % 100_000)
    }
}

/// An ISO 8601 UTC date-time with milliseconds, e.g. `2026-05-01T12:00:00.200Z`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateTime(pub SystemTime);

impl std::fmt::Display for DateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_are_utc_with_milliseconds() {
        let t =
            |secs: u64, ms: u64| DateTime(UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms)).to_string();
        assert_eq!(t(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(t(1_767_225_599, 999), "2025-12-31T23:59:59.999Z");
        assert_eq!(t(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn seconds_have_five_decimals() {
        assert_eq!(Seconds::floor(Duration::from_millis(2000)).to_string(), "2.00000");
        assert_eq!(
            Seconds::floor(Duration::from_nanos(200_200_000)).to_string(),
            "0.20020"
        );
        assert_eq!(
            Seconds::ceil(Duration::from_nanos(221_333_333)).to_string(),
            "0.22134"
        );
        assert_eq!(
            Seconds::floor(Duration::from_nanos(221_333_333)).to_string(),
            "0.22133"
        );
    }
}
