// Reads the wall clock that Fanout's test source burns into every frame (docs/bridge.md,
// bridge/src/test_source/clock_code.rs is the writer and the Rust reader).
//
// The picture is a grid of 36 x 20 units whatever its size, so the code scales with the
// rendition. Two rows of 32 cells sit at grid columns 2..34, rows 17..19, on black:
//   white black | 28 payload bits | black white
// The guards give this frame's white and black levels; the 56 payload bits (row-major, MSB
// first) are the frame's time in Unix milliseconds as 6 big-endian bytes, then their CRC-8
// (polynomial 0x07). The reader averages luma over the middle half of each cell.
// Pure functions over RGBA pixels (ImageData), so Node tests them without a browser.

export const GRID_COLUMNS = 36;
export const GRID_ROWS = 20;
export const CODE_COLUMNS = 32;
export const CODE_ROWS = 2;
export const FIRST_COLUMN = 2;
export const FIRST_ROW = 17;
const BITS_PER_ROW = CODE_COLUMNS - 4;
const TIME_BYTES = 6;
const MIN_CONTRAST = 48; // of 255, between the darkest white guard and the brightest black one

/**
 * The Unix milliseconds burnt into a frame, or null when it carries no valid code.
 * Takes an ImageData-like {data, width, height}, or an RGBA buffer and its width and height.
 * The frame must be the whole picture (any size), as drawn from a <video> into a canvas.
 */
export function decodeClockCode(pixels, width, height) {
  const data = pixels.data ?? pixels;
  const w = width ?? pixels.width;
  const h = height ?? pixels.height;
  if (!(w >= GRID_COLUMNS * 2 && h >= GRID_ROWS * 2) || data.length < w * h * 4) return null;

  const levels = [];
  for (let row = 0; row < CODE_ROWS; row++) {
    for (let col = 0; col < CODE_COLUMNS; col++) {
      levels.push(cellLevel(data, w, h, FIRST_COLUMN + col, FIRST_ROW + row));
    }
  }
  let white = Infinity;
  let black = -Infinity;
  for (let row = 0; row < CODE_ROWS; row++) {
    for (let col = 0; col < CODE_COLUMNS; col++) {
      const g = guard(col);
      if (g === true) white = Math.min(white, levels[row * CODE_COLUMNS + col]);
      if (g === false) black = Math.max(black, levels[row * CODE_COLUMNS + col]);
    }
  }
  if (white - black < MIN_CONTRAST) return null;
  const threshold = (white + black) / 2;

  const bytes = new Array(TIME_BYTES + 1).fill(0);
  for (let row = 0; row < CODE_ROWS; row++) {
    for (let col = 2; col < CODE_COLUMNS - 2; col++) {
      const bit = row * BITS_PER_ROW + col - 2;
      if (levels[row * CODE_COLUMNS + col] > threshold) bytes[bit >> 3] |= 0x80 >> (bit & 7);
    }
  }
  const time = bytes.slice(0, TIME_BYTES);
  if (crc8(time) !== bytes[TIME_BYTES]) return null;
  return time.reduce((acc, byte) => acc * 256 + byte, 0);
}

/** The 64 cells for `ms`, row-major, true = white (what the test source paints). */
export function clockCodeCells(ms) {
  let v = Math.max(0, Math.round(ms));
  const bytes = new Array(TIME_BYTES);
  for (let i = TIME_BYTES - 1; i >= 0; i--) {
    bytes[i] = v % 256;
    v = Math.floor(v / 256);
  }
  bytes.push(crc8(bytes));
  const cells = [];
  for (let row = 0; row < CODE_ROWS; row++) {
    for (let col = 0; col < CODE_COLUMNS; col++) {
      const g = guard(col);
      const bit = row * BITS_PER_ROW + col - 2;
      cells.push(g ?? ((bytes[bit >> 3] >> (7 - (bit & 7))) & 1) === 1);
    }
  }
  return cells;
}

/** Paints the code for `ms` with a 2D context's fillRect, as the test source does in luma. */
export function drawClockCode(ctx, width, height, ms) {
  const rect = (c0, r0, c1, r1) => {
    const x0 = Math.round((c0 * width) / GRID_COLUMNS);
    const y0 = Math.round((r0 * height) / GRID_ROWS);
    return [x0, y0, Math.round((c1 * width) / GRID_COLUMNS) - x0, Math.round((r1 * height) / GRID_ROWS) - y0];
  };
  ctx.fillStyle = '#000000';
  ctx.fillRect(...rect(1, 16, 35, 20));
  clockCodeCells(ms).forEach((white, i) => {
    const col = FIRST_COLUMN + (i % CODE_COLUMNS);
    const row = FIRST_ROW + Math.floor(i / CODE_COLUMNS);
    ctx.fillStyle = white ? '#ffffff' : '#000000';
    ctx.fillRect(...rect(col, row, col + 1, row + 1));
  });
}

/** CRC-8, polynomial 0x07, initial value 0 (CRC-8/SMBUS). */
export function crc8(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/** true for the white guards, false for the black ones, null for payload cells. */
function guard(col) {
  if (col === 0 || col === CODE_COLUMNS - 1) return true;
  if (col === 1 || col === CODE_COLUMNS - 2) return false;
  return null;
}

/** Mean luma (BT.601 weights) over the middle half of a grid cell at this picture size. */
function cellLevel(data, width, height, col, row) {
  const cw = width / GRID_COLUMNS;
  const ch = height / GRID_ROWS;
  const x0 = Math.floor(col * cw + cw / 4);
  const x1 = Math.max(x0 + 1, Math.ceil(col * cw + (3 * cw) / 4));
  const y0 = Math.floor(row * ch + ch / 4);
  const y1 = Math.max(y0 + 1, Math.ceil(row * ch + (3 * ch) / 4));
  let sum = 0;
  for (let y = y0; y < y1; y++) {
    let i = (y * width + x0) * 4;
    for (let x = x0; x < x1; x++, i += 4) sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
  }
  return sum / ((x1 - x0) * (y1 - y0));
}
