//! The machine-readable wall clock burnt into every frame of the test source.
//!
//! The picture is divided into a grid of 36 columns by 20 rows, whatever its size, so the code
//! scales with the picture and reads the same at every rendition. Two rows of 32 cells sit at
//! grid columns 2..34, grid rows 17..19, on a black background (grid columns 1..35, rows 16..20)
//! with neutral chroma. Each row is
//!
//! ```text
//!   white black | 28 payload bits | black white
//! ```
//!
//! The guard cells give the reader this frame's white and black levels and tell a coded frame
//! from any other. The 56 payload bits, row-major and most significant bit first, are the frame's
//! wall-clock time in whole Unix milliseconds as 6 big-endian bytes, then a CRC-8 of those bytes
//! (polynomial 0x07, initial value 0), so a misread cell is rejected instead of becoming a wrong
//! time. A reader averages the middle half of each cell (in both directions), away from the
//! edges where scaling and block coding smear it. `web/js/clockcode.js` is the same reader for
//! RGBA pixels; `docs/bridge.md` draws the layout.

/// Picture width in grid units.
pub const GRID_COLUMNS: u32 = 36;
/// Picture height in grid units.
pub const GRID_ROWS: u32 = 20;
/// Cells per code row.
pub const CODE_COLUMNS: u32 = 32;
/// Code rows.
pub const CODE_ROWS: u32 = 2;
/// Grid column of the first code cell.
pub const FIRST_COLUMN: u32 = 2;
/// Grid row of the first code row.
pub const FIRST_ROW: u32 = 17;
/// Payload bits per row: every cell but the two guards at each end.
pub const BITS_PER_ROW: u32 = CODE_COLUMNS - 4;
/// Luma of a white cell (video range).
pub const WHITE: u8 = 235;
/// Luma of a black cell and of the background (video range).
pub const BLACK: u8 = 16;
/// Below this difference between the darkest white guard and the brightest black guard (of 255)
/// the frame carries no readable code.
pub const MIN_CONTRAST: f64 = 48.0;

/// The background rectangle in grid units: (first column, first row, end column, end row).
const BACKGROUND: (u32, u32, u32, u32) = (1, 16, 35, 20);
const TIME_BYTES: usize = 6;
/// The largest time the code carries: 48 bits of milliseconds, past the year 10000.
pub const MAX_MS: u64 = (1 << 48) - 1;

/// The 64 cells of the code, row-major, `true` = white.
pub fn cells(unix_ms: u64) -> [bool; (CODE_COLUMNS * CODE_ROWS) as usize] {
    let payload = payload_bits(unix_ms);
    let mut cells = [false; (CODE_COLUMNS * CODE_ROWS) as usize];
    for row in 0..CODE_ROWS {
        for col in 0..CODE_COLUMNS {
            cells[(row * CODE_COLUMNS + col) as usize] = match guard(col) {
                Some(white) => white,
                None => payload[(row * BITS_PER_ROW + col - 2) as usize],
            };
        }
    }
    cells
}

/// Paints the code for `unix_ms` (clamped to [`MAX_MS`]) into a luma plane of a
/// `width` x `height` picture whose rows are `stride` bytes apart.
pub fn paint_luma(luma: &mut [u8], stride: usize, width: u32, height: u32, unix_ms: u64) {
    let (c0, r0, c1, r1) = BACKGROUND;
    fill(luma, stride, grid_rect(c0, r0, c1, r1, width, height), BLACK);
    for (i, white) in cells(unix_ms).into_iter().enumerate() {
        let (col, row) = (i as u32 % CODE_COLUMNS, i as u32 / CODE_COLUMNS);
        let (col, row) = (FIRST_COLUMN + col, FIRST_ROW + row);
        let rect = grid_rect(col, row, col + 1, row + 1, width, height);
        fill(luma, stride, rect, if white { WHITE } else { BLACK });
    }
}

/// Makes the code's background grey in one chroma plane (U or V) of a 4:2:0 picture whose luma
/// is `width` x `height`, so the cells are black and white rather than tinted by the pattern.
pub fn paint_chroma(chroma: &mut [u8], stride: usize, width: u32, height: u32) {
    let (c0, r0, c1, r1) = BACKGROUND;
    let (x0, y0, x1, y1) = grid_rect(c0, r0, c1, r1, width, height);
    let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
    let rect = (x0 / 2, y0 / 2, x1.div_ceil(2).min(cw), y1.div_ceil(2).min(ch));
    fill(chroma, stride, rect, 128);
}

/// Reads the code from a luma plane of a `width` x `height` picture at any scale. Returns the
/// Unix milliseconds, or `None` when the picture carries no valid code (guards missing or too
/// faint, CRC mismatch, picture too small).
pub fn read_luma(luma: &[u8], stride: usize, width: u32, height: u32) -> Option<u64> {
    read(width, height, |x, y| {
        f64::from(*luma.get(y * stride + x).unwrap_or(&0))
    })
}

/// The reader over any pixel accessor returning luma at (x, y); shared by the plane reader and
/// tests that synthesise pictures.
pub fn read(width: u32, height: u32, luma_at: impl Fn(usize, usize) -> f64) -> Option<u64> {
    if width < GRID_COLUMNS * 2 || height < GRID_ROWS * 2 {
        return None;
    }
    let mut levels = [0.0; (CODE_COLUMNS * CODE_ROWS) as usize];
    for (i, level) in levels.iter_mut().enumerate() {
        let (col, row) = (i as u32 % CODE_COLUMNS, i as u32 / CODE_COLUMNS);
        *level = cell_level(FIRST_COLUMN + col, FIRST_ROW + row, width, height, &luma_at);
    }
    let (mut white, mut black) = (f64::INFINITY, f64::NEG_INFINITY);
    for row in 0..CODE_ROWS {
        for col in 0..CODE_COLUMNS {
            let level = levels[(row * CODE_COLUMNS + col) as usize];
            match guard(col) {
                Some(true) => white = white.min(level),
                Some(false) => black = black.max(level),
                None => {}
            }
        }
    }
    if white - black < MIN_CONTRAST {
        return None;
    }
    let threshold = (white + black) / 2.0;
    let mut bytes = [0u8; TIME_BYTES + 1];
    for row in 0..CODE_ROWS {
        for col in 2..CODE_COLUMNS - 2 {
            let bit = (row * BITS_PER_ROW + col - 2) as usize;
            if levels[(row * CODE_COLUMNS + col) as usize] > threshold {
                bytes[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
    }
    if crc8(&bytes[..TIME_BYTES]) != bytes[TIME_BYTES] {
        return None;
    }
    Some(
        bytes[..TIME_BYTES]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}

/// CRC-8 with polynomial 0x07 and initial value 0 (CRC-8/SMBUS).
pub fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &byte in bytes {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `Some(white)` for the guard cells at both ends of a row, `None` for payload cells.
fn guard(col: u32) -> Option<bool> {
    match col {
        0 => Some(true),
        1 => Some(false),
        c if c == CODE_COLUMNS - 2 => Some(false),
        c if c == CODE_COLUMNS - 1 => Some(true),
        _ => None,
    }
}

fn payload_bits(unix_ms: u64) -> [bool; (BITS_PER_ROW * CODE_ROWS) as usize] {
    let ms = unix_ms.min(MAX_MS);
    let mut bytes = [0u8; TIME_BYTES + 1];
    for (i, byte) in bytes[..TIME_BYTES].iter_mut().enumerate() {
        *byte = (ms >> (8 * (TIME_BYTES - 1 - i))) as u8;
    }
    bytes[TIME_BYTES] = crc8(&bytes[..TIME_BYTES]);
    let mut bits = [false; (BITS_PER_ROW * CODE_ROWS) as usize];
    for (i, bit) in bits.iter_mut().enumerate() {
        *bit = bytes[i / 8] & (0x80 >> (i % 8)) != 0;
    }
    bits
}

/// Whole-pixel edges of a grid rectangle, rounded so neighbouring cells share an edge.
fn grid_rect(c0: u32, r0: u32, c1: u32, r1: u32, width: u32, height: u32) -> (usize, usize, usize, usize) {
    let x =
        |c: u32| (u64::from(c) * u64::from(width) + u64::from(GRID_COLUMNS / 2)) / u64::from(GRID_COLUMNS);
    let y = |r: u32| (u64::from(r) * u64::from(height) + u64::from(GRID_ROWS / 2)) / u64::from(GRID_ROWS);
    (x(c0) as usize, y(r0) as usize, x(c1) as usize, y(r1) as usize)
}

fn fill(plane: &mut [u8], stride: usize, (x0, y0, x1, y1): (usize, usize, usize, usize), value: u8) {
    for y in y0..y1 {
        let start = y * stride + x0;
        let end = (y * stride + x1).min(plane.len());
        if start < end {
            plane[start..end].fill(value);
        }
    }
}

/// Mean luma over the middle half of a cell, in picture coordinates at this size.
fn cell_level(col: u32, row: u32, width: u32, height: u32, luma_at: &impl Fn(usize, usize) -> f64) -> f64 {
    let cw = f64::from(width) / f64::from(GRID_COLUMNS);
    let ch = f64::from(height) / f64::from(GRID_ROWS);
    let x0 = (f64::from(col) * cw + cw / 4.0).floor() as usize;
    let x1 = ((f64::from(col) * cw + 3.0 * cw / 4.0).ceil() as usize).max(x0 + 1);
    let y0 = (f64::from(row) * ch + ch / 4.0).floor() as usize;
    let y1 = ((f64::from(row) * ch + 3.0 * ch / 4.0).ceil() as usize).max(y0 + 1);
    let mut sum = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += luma_at(x, y);
        }
    }
    sum / ((x1 - x0) * (y1 - y0)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_763_740_800_123; // 2025-11-21T16:00:00.123Z

    struct Gray {
        width: u32,
        height: u32,
        data: Vec<u8>,
    }

    impl Gray {
        fn new(width: u32, height: u32, fill: u8) -> Self {
            Gray {
                width,
                height,
                data: vec![fill; (width * height) as usize],
            }
        }

        fn coded(width: u32, height: u32, ms: u64) -> Self {
            let mut g = Gray::new(width, height, 128);
            // A busy pattern around the code, as the test source has.
            for (i, p) in g.data.iter_mut().enumerate() {
                *p = ((i * 7 + i / width as usize * 13) % 256) as u8;
            }
            paint_luma(&mut g.data, width as usize, width, height, ms);
            g
        }

        fn read(&self) -> Option<u64> {
            read_luma(&self.data, self.width as usize, self.width, self.height)
        }

        /// Area-averaging downscale, then video-range squeeze, 3-tap blur and deterministic noise:
        /// roughly what a scaler and a lossy codec do to hard edges.
        fn degrade(&self, width: u32, height: u32, noise: f64) -> Self {
            let (sx, sy) = (
                f64::from(self.width) / f64::from(width),
                f64::from(self.height) / f64::from(height),
            );
            let mut scaled = vec![0.0; (width * height) as usize];
            for y in 0..height as usize {
                for x in 0..width as usize {
                    let (ya, yb) = ((y as f64 * sy) as usize, ((y + 1) as f64 * sy).ceil() as usize);
                    let (xa, xb) = ((x as f64 * sx) as usize, ((x + 1) as f64 * sx).ceil() as usize);
                    let mut sum = 0.0;
                    for yy in ya..yb {
                        for xx in xa..xb {
                            sum += f64::from(self.data[yy * self.width as usize + xx]);
                        }
                    }
                    scaled[y * width as usize + x] = sum / ((yb - ya) * (xb - xa)) as f64;
                }
            }
            let mut seed = 7u64;
            let mut out = Gray::new(width, height, 0);
            for y in 0..height as usize {
                for x in 0..width as usize {
                    let at = |x: usize| scaled[y * width as usize + x.min(width as usize - 1)];
                    let blurred = (at(x.saturating_sub(1)) + 2.0 * at(x) + at(x + 1)) / 4.0;
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (seed >> 33) as f64 / f64::from(1u32 << 31) - 0.5;
                    let v = 16.0 + blurred * 219.0 / 255.0 + r * noise;
                    out.data[y * width as usize + x] = v.clamp(0.0, 255.0) as u8;
                }
            }
            out
        }
    }

    #[test]
    fn crc8_matches_the_smbus_check_value() {
        assert_eq!(crc8(b"123456789"), 0xf4);
    }

    /// The same string is asserted by web/test/clockcode.test.mjs, so the two encoders agree.
    #[test]
    fn cells_for_a_known_time() {
        let bits: String = cells(NOW).iter().map(|&w| if w { '1' } else { '0' }).collect();
        assert_eq!(
            bits,
            "10000000011001101010100111001001\
                          10010011010100011110111010110001"
        );
    }

    #[test]
    fn reads_back_what_it_paints_at_every_rung() {
        for (w, h) in [(1280, 720), (854, 480), (640, 360), (1920, 1080), (320, 180)] {
            assert_eq!(Gray::coded(w, h, NOW).read(), Some(NOW), "{w}x{h}");
        }
    }

    #[test]
    fn survives_downscaling_blur_and_noise() {
        let src = Gray::coded(1280, 720, NOW);
        for (w, h) in [(854, 480), (640, 360), (427, 240), (256, 144)] {
            assert_eq!(src.degrade(w, h, 40.0).read(), Some(NOW), "{w}x{h}");
        }
    }

    #[test]
    fn every_time_bit_survives() {
        for bit in 0..48 {
            let ms = 1u64 << bit;
            assert_eq!(Gray::coded(640, 360, ms).read(), Some(ms), "bit {bit}");
        }
    }

    #[test]
    fn a_picture_without_a_code_reads_none() {
        assert_eq!(Gray::new(640, 360, 128).read(), None);
        assert_eq!(Gray::new(640, 360, 16).read(), None);
        assert_eq!(Gray::new(40, 20, 128).read(), None);
    }

    #[test]
    fn a_flipped_payload_cell_is_rejected() {
        let mut g = Gray::coded(640, 360, NOW);
        let (x0, y0, x1, y1) = grid_rect(
            FIRST_COLUMN + 5,
            FIRST_ROW,
            FIRST_COLUMN + 6,
            FIRST_ROW + 1,
            640,
            360,
        );
        let now = g.data[((y0 + y1) / 2) * 640 + (x0 + x1) / 2];
        fill(
            &mut g.data,
            640,
            (x0, y0, x1, y1),
            if now == WHITE { BLACK } else { WHITE },
        );
        assert_eq!(g.read(), None);
    }

    #[test]
    fn chroma_background_is_neutral() {
        let (w, h) = (854u32, 480u32);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut u = vec![0u8; (cw * ch) as usize];
        paint_chroma(&mut u, cw as usize, w, h);
        let (x0, y0, x1, y1) = grid_rect(
            FIRST_COLUMN,
            FIRST_ROW,
            FIRST_COLUMN + CODE_COLUMNS,
            FIRST_ROW + 2,
            w,
            h,
        );
        for y in y0 / 2..y1 / 2 {
            for x in x0 / 2..x1 / 2 {
                assert_eq!(u[y * cw as usize + x], 128);
            }
        }
        assert_eq!(u[0], 0, "outside the background stays untouched");
    }
}
