//! The ABR ladder: which renditions a stream gets, and how hard the encoder works on them.
//!
//! A ladder is a list of heights, top first (`--hls-ladder 720,480,360`, or a stream's own
//! `hlsLadder`). A source gets the heights at or below its own (nothing is scaled up); when
//! the source is smaller than the top height and not itself one of them, its own size becomes
//! the top rung, so no detail is thrown away. Widths keep the source's aspect ratio; bit
//! rates follow the standard rungs (1080p 6 Mb/s, 720p 3 Mb/s, 480p 1.5 Mb/s, 360p 0.8 Mb/s)
//! and scale with the pixel count for other sizes.

/// One rung of the video ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    /// Picture width in pixels (even).
    pub width: u32,
    /// Picture height in pixels (even).
    pub height: u32,
    /// Target bit rate in bit/s.
    pub bitrate: u32,
}

/// How hard x264 works per frame: the cost of the ladder on the CPU against quality per bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpeedPreset {
    /// No CABAC, no subpel refinement: the cheapest, visibly softer at low rates.
    Ultrafast,
    /// A little more search than ultrafast.
    Superfast,
    /// CABAC and some motion search: about 1.5x the CPU of ultrafast.
    #[default]
    Veryfast,
}

impl SpeedPreset {
    /// The x264enc `speed-preset` nick.
    pub fn nick(self) -> &'static str {
        match self {
            SpeedPreset::Ultrafast => "ultrafast",
            SpeedPreset::Superfast => "superfast",
            SpeedPreset::Veryfast => "veryfast",
        }
    }
}

/// The standard rungs by height, with their bit rates (16:9 widths).
pub const STANDARD: [Rendition; 4] = [
    Rendition {
        width: 1920,
        height: 1080,
        bitrate: 6_000_000,
    },
    Rendition {
        width: 1280,
        height: 720,
        bitrate: 3_000_000,
    },
    Rendition {
        width: 854,
        height: 480,
        bitrate: 1_500_000,
    },
    Rendition {
        width: 640,
        height: 360,
        bitrate: 800_000,
    },
];

/// The smallest rung height a ladder may ask for.
const MIN_HEIGHT: u32 = 90;

/// Parses a ladder such as `720,480,360` (heights in any order, `p` suffixes allowed) into
/// distinct heights, top first.
pub fn parse_heights(text: &str) -> Result<Vec<u32>, String> {
    let mut heights = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let digits = part.strip_suffix('p').unwrap_or(part);
        let h: u32 = digits
            .parse()
            .map_err(|_| format!("ladder rung {part:?} is not a height such as 720"))?;
        if !(MIN_HEIGHT..=2160).contains(&h) || !h.is_multiple_of(2) {
            return Err(format!(
                "ladder rung {h}: an even height from {MIN_HEIGHT} to 2160"
            ));
        }
        if !heights.contains(&h) {
            heights.push(h);
        }
    }
    if heights.is_empty() {
        return Err("the ladder has no rungs".into());
    }
    heights.sort_unstable_by(|a, b| b.cmp(a));
    Ok(heights)
}

/// The renditions for a `source_width` x `source_height` source from the ladder `heights`
/// (top first). Never empty: a source smaller than every rung gets its own size.
pub fn for_source(source_width: u32, source_height: u32, heights: &[u32]) -> Vec<Rendition> {
    let (sw, sh) = (source_width.max(2), source_height.max(2));
    let mut rungs: Vec<u32> = heights.iter().copied().filter(|h| *h <= sh).collect();
    let top = heights.iter().copied().max().unwrap_or(sh);
    if sh < top && !rungs.contains(&even(sh)) {
        rungs.insert(0, even(sh));
    }
    rungs
        .into_iter()
        .map(|h| {
            // The nearest even width that keeps the source's aspect ratio.
            let w = ((u64::from(h) * u64::from(sw) + u64::from(sh)) / (2 * u64::from(sh)) * 2) as u32;
            Rendition {
                width: w.max(2),
                height: h,
                bitrate: bitrate_for(w, h),
            }
        })
        .collect()
}

/// The renditions when the source itself is the top rung (its H.264 copied as it is): its
/// size on top, then the ladder's heights below it.
pub fn source_on_top(source_width: u32, source_height: u32, heights: &[u32]) -> Vec<Rendition> {
    let (w, h) = (source_width.max(2), source_height.max(2));
    let mut rungs = vec![Rendition {
        width: w,
        height: h,
        bitrate: bitrate_for(w, h),
    }];
    rungs.extend(for_source(w, h, heights).into_iter().filter(|r| r.height < h));
    rungs
}

/// The standard rung's bit rate for its height; other sizes scale with the pixel count from
/// the nearest standard rung above (or the smallest).
fn bitrate_for(width: u32, height: u32) -> u32 {
    if let Some(r) = STANDARD.iter().find(|r| r.height == height) {
        return r.bitrate;
    }
    let reference = STANDARD
        .iter()
        .rev()
        .find(|r| r.height >= height)
        .unwrap_or(&STANDARD[0]);
    let pixels = u64::from(width) * u64::from(height);
    let reference_pixels = u64::from(reference.width) * u64::from(reference.height);
    let scaled = u64::from(reference.bitrate) * pixels / reference_pixels;
    scaled.clamp(200_000, 8_000_000) as u32
}

fn even(n: u32) -> u32 {
    (n + 1) & !1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(rungs: &[Rendition]) -> Vec<(u32, u32)> {
        rungs.iter().map(|r| (r.width, r.height)).collect()
    }

    #[test]
    fn parses_heights_top_first_and_refuses_nonsense() {
        assert_eq!(parse_heights("360,720p, 480"), Ok(vec![720, 480, 360]));
        assert_eq!(parse_heights("720,720"), Ok(vec![720]));
        for bad in ["", "abc", "721", "80", "4000", ",,"] {
            assert!(parse_heights(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_source_gets_the_rungs_at_or_below_it_and_never_an_upscale() {
        let ladder = [720, 480, 360];
        assert_eq!(
            sizes(&for_source(1280, 720, &ladder)),
            [(1280, 720), (854, 480), (640, 360)]
        );
        assert_eq!(
            sizes(&for_source(1920, 1080, &ladder)),
            [(1280, 720), (854, 480), (640, 360)]
        );
        // Between rungs: its own size on top.
        assert_eq!(
            sizes(&for_source(960, 540, &ladder)),
            [(960, 540), (854, 480), (640, 360)]
        );
        // Below every rung: its own size only.
        assert_eq!(sizes(&for_source(320, 180, &ladder)), [(320, 180)]);
        // Another aspect ratio keeps its shape.
        assert_eq!(sizes(&for_source(640, 480, &ladder)), [(640, 480), (480, 360)]);
        assert_eq!(sizes(&for_source(640, 360, &[240])), [(426, 240)]);
    }

    #[test]
    fn bit_rates_follow_the_standard_rungs_and_scale_between_them() {
        let rungs = for_source(1920, 1080, &[1080, 720, 480, 360]);
        let rates: Vec<u32> = rungs.iter().map(|r| r.bitrate).collect();
        assert_eq!(rates, [6_000_000, 3_000_000, 1_500_000, 800_000]);
        let own = for_source(960, 540, &[720])[0];
        assert!((1_500_000..3_000_000).contains(&own.bitrate), "{own:?}");
    }

    #[test]
    fn a_copied_source_is_the_top_rung_above_the_ladders_lower_heights() {
        let ladder = [720, 480, 360];
        assert_eq!(
            sizes(&source_on_top(1920, 1080, &ladder)),
            vec![(1920, 1080), (1280, 720), (854, 480), (640, 360)]
        );
        assert_eq!(
            sizes(&source_on_top(1280, 720, &ladder)),
            vec![(1280, 720), (854, 480), (640, 360)]
        );
        assert_eq!(sizes(&source_on_top(640, 360, &ladder)), vec![(640, 360)]);
        assert_eq!(
            sizes(&source_on_top(1000, 562, &ladder)),
            vec![(1000, 562), (854, 480), (640, 360)]
        );
    }
}
