// A wall-clock barcode that survives video coding and downscaling, for glass-to-glass latency.
//
// The top three quarters of the frame are an 8×8 grid of black/white cells, row-major:
//   row 0      sync: white, black, white, ... (tells a barcode frame from any other, and gives
//              the decoder the black and white levels of this frame)
//   rows 1..6  48 data bits: the capture time in whole milliseconds since the Unix epoch,
//              big-endian (good until the year 10889)
//   row 7      CRC-8 of the six data bytes (a misread cell must not become a wrong sample)
// A cell is 80×34 px at 640×360 and still 20×8 px in the 160×90 simulcast layer; the decoder
// only averages the middle half of each cell, where block edges and ringing do not reach.
// Pure functions over RGBA pixels, so Node can test them without a browser.

export const COLS = 8;
export const ROWS = 8;
/** Fraction of the frame height the grid covers; the rest is free for a human-readable label. */
export const BAND = 0.75;
const SYNC = [1, 0, 1, 0, 1, 0, 1, 0];
const DATA_BYTES = 6;
const MIN_CONTRAST = 48; // of 255: below this the frame is not a barcode frame (black, faded)

/** The 64 bits for a timestamp, row-major, 1 = white. */
export function encodeBits(ms) {
  const bytes = timestampBytes(ms);
  const bits = [...SYNC];
  for (const byte of [...bytes, crc8(bytes)]) {
    for (let i = 7; i >= 0; i--) bits.push((byte >> i) & 1);
  }
  return bits;
}

/** Draws the barcode for `ms` onto a 2D context (or anything with fillStyle and fillRect). */
export function drawBarcode(ctx, width, height, ms) {
  const bits = encodeBits(ms);
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < COLS; c++) {
      const cell = cellEdges(c, r, width, height);
      ctx.fillStyle = bits[r * COLS + c] ? '#ffffff' : '#000000';
      ctx.fillRect(cell.x0, cell.y0, cell.x1 - cell.x0, cell.y1 - cell.y0);
    }
  }
}

/**
 * Reads the timestamp back from RGBA pixels ({data, width, height}, like ImageData) of a whole
 * frame at any scale. Returns milliseconds since the epoch, or null when the frame carries no
 * valid barcode.
 */
export function decodeBarcode(image) {
  const levels = [];
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < COLS; c++) levels.push(cellLevel(image, c, r));
  }
  const whites = SYNC.map((bit, i) => (bit ? levels[i] : Infinity));
  const blacks = SYNC.map((bit, i) => (bit ? -Infinity : levels[i]));
  const white = Math.min(...whites);
  const black = Math.max(...blacks);
  if (white - black < MIN_CONTRAST) return null;
  const threshold = (white + black) / 2;

  const bytes = [];
  for (let b = 0; b < DATA_BYTES + 1; b++) {
    let byte = 0;
    for (let i = 0; i < 8; i++) byte = (byte << 1) | (levels[COLS + b * 8 + i] > threshold ? 1 : 0);
    bytes.push(byte);
  }
  const data = bytes.slice(0, DATA_BYTES);
  if (crc8(data) !== bytes[DATA_BYTES]) return null;
  return data.reduce((acc, byte) => acc * 256 + byte, 0);
}

/** CRC-8, polynomial 0x07 (CRC-8/SMBUS). */
export function crc8(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

function timestampBytes(ms) {
  let v = Math.round(ms);
  const bytes = new Array(DATA_BYTES);
  for (let i = DATA_BYTES - 1; i >= 0; i--) {
    bytes[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return bytes;
}

/** Whole-pixel edges of a cell, so neighbouring cells share an edge without a blended seam. */
function cellEdges(c, r, width, height) {
  const band = height * BAND;
  return {
    x0: Math.round((c * width) / COLS),
    x1: Math.round(((c + 1) * width) / COLS),
    y0: Math.round((r * band) / ROWS),
    y1: Math.round(((r + 1) * band) / ROWS),
  };
}

/** Mean green (of R, G, B the closest to luma, which codecs keep best) over the middle half of a cell. */
function cellLevel(image, c, r) {
  const cw = image.width / COLS;
  const ch = (image.height * BAND) / ROWS;
  const x0 = Math.floor(c * cw + cw / 4);
  const x1 = Math.max(x0 + 1, Math.ceil(c * cw + (3 * cw) / 4));
  const y0 = Math.floor(r * ch + ch / 4);
  const y1 = Math.max(y0 + 1, Math.ceil(r * ch + (3 * ch) / 4));
  let sum = 0;
  for (let y = y0; y < y1; y++) {
    let i = (y * image.width + x0) * 4 + 1;
    for (let x = x0; x < x1; x++, i += 4) sum += image.data[i];
  }
  return sum / ((x1 - x0) * (y1 - y0));
}
