// The test source's clock code read from RGBA pixels: drawn at the top rendition, scaled to
// each rung and beyond, tinted, blurred and noised the way a scaler, a codec and a canvas do.

import test from 'node:test';
import assert from 'node:assert/strict';
import { decodeClockCode, drawClockCode, clockCodeCells, crc8 } from '../js/clockcode.js';

/** An RGBA frame with a busy coloured pattern and the fillRect subset of a 2D context. */
function frame(width, height) {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data[i * 4] = (i * 7) % 256;
    data[i * 4 + 1] = (i * 13 + Math.floor(i / width) * 5) % 256;
    data[i * 4 + 2] = (i * 3) % 256;
    data[i * 4 + 3] = 255;
  }
  return {
    width, height, data, fillStyle: '#000000',
    fillRect(x, y, w, h) {
      const v = this.fillStyle === '#ffffff' ? 255 : 0;
      for (let yy = y; yy < y + h; yy++) {
        for (let xx = x; xx < x + w; xx++) data.fill(v, (yy * width + xx) * 4, (yy * width + xx) * 4 + 3);
      }
    },
  };
}

/** Area-averaging downscale, like a video scaler or drawImage into a smaller canvas. */
function scale(src, width, height) {
  const out = frame(width, height);
  const sx = src.width / width;
  const sy = src.height / height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let ch = 0; ch < 3; ch++) {
        let sum = 0;
        let n = 0;
        for (let yy = Math.floor(y * sy); yy < Math.ceil((y + 1) * sy); yy++) {
          for (let xx = Math.floor(x * sx); xx < Math.ceil((x + 1) * sx); xx++) {
            sum += src.data[(yy * src.width + xx) * 4 + ch];
            n++;
          }
        }
        out.data[(y * width + x) * 4 + ch] = sum / n;
      }
    }
  }
  return out;
}

/** Limited range, a chroma tint, a 3-tap horizontal blur and deterministic noise. */
function degrade(img, noise) {
  const out = frame(img.width, img.height);
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 4;
      const at = (xx) => img.data[(y * img.width + Math.min(img.width - 1, Math.max(0, xx))) * 4 + 1];
      const luma = 16 + ((at(x - 1) + 2 * at(x) + at(x + 1)) / 4) * (219 / 255) + rand() * noise;
      out.data[i] = luma + 12;
      out.data[i + 1] = luma - 6;
      out.data[i + 2] = luma + 20;
    }
  }
  return out;
}

const NOW = 1_763_740_800_123; // 2025-11-21T16:00:00.123Z

test('cells match the Rust writer for a known time', () => {
  // The same string is asserted in bridge/src/test_source/clock_code.rs.
  const bits = clockCodeCells(NOW).map((w) => (w ? '1' : '0')).join('');
  assert.equal(bits, '10000000011001101010100111001001' + '10010011010100011110111010110001');
  assert.equal(crc8([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]), 0xf4);
});

for (const [w, h] of [[1280, 720], [854, 480], [640, 360], [1920, 1080]]) {
  test(`reads a code drawn at ${w}x${h}`, () => {
    const img = frame(w, h);
    drawClockCode(img, w, h, NOW);
    assert.equal(decodeClockCode(img), NOW);
    assert.equal(decodeClockCode(img.data, w, h), NOW, 'buffer + size form');
  });
}

for (const [w, h] of [[854, 480], [640, 360], [427, 240], [256, 144]]) {
  test(`reads a 1280x720 code scaled to ${w}x${h}, tinted, blurred and noised`, () => {
    const src = frame(1280, 720);
    drawClockCode(src, 1280, 720, NOW);
    assert.equal(decodeClockCode(degrade(scale(src, w, h), 40)), NOW);
  });
}

test('every time bit survives', () => {
  for (let bit = 0; bit < 48; bit++) {
    const ms = 2 ** bit;
    const img = frame(640, 360);
    drawClockCode(img, 640, 360, ms);
    assert.equal(decodeClockCode(img), ms, `bit ${bit}`);
  }
});

test('frames without a code read null', () => {
  assert.equal(decodeClockCode(frame(640, 360)), null);
  const black = frame(640, 360);
  black.data.fill(0);
  assert.equal(decodeClockCode(black), null);
  assert.equal(decodeClockCode(new Uint8ClampedArray(40 * 20 * 4), 40, 20), null, 'too small');
});

test('a flipped payload cell is rejected by the CRC', () => {
  const img = frame(640, 360);
  drawClockCode(img, 640, 360, NOW);
  const cw = 640 / 36;
  const ch = 360 / 20;
  const x = Math.round(7 * cw + cw / 2);
  const y = Math.round(17 * ch + ch / 2);
  img.fillStyle = img.data[(y * 640 + x) * 4] > 128 ? '#000000' : '#ffffff';
  img.fillRect(Math.round(7 * cw), Math.round(17 * ch), Math.round(cw), Math.round(ch));
  assert.equal(decodeClockCode(img), null);
});
