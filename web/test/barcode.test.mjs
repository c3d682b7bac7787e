// The barcode round trip without a browser: draw at 640×360, degrade the picture the ways a
// simulcast layer and a lossy codec do (box downscale, blur, noise, limited range), decode.

import test from 'node:test';
import assert from 'node:assert/strict';
import { drawBarcode, decodeBarcode, encodeBits, crc8 } from '../bench/barcode.js';

/** An RGBA frame with the fillRect subset of CanvasRenderingContext2D. */
function frame(width, height) {
  const data = new Uint8ClampedArray(width * height * 4).fill(128);
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

/** Area-averaging downscale to any size, like a browser's or an encoder's scaler. */
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

/** Squeezes to video range (16..235), blurs edges over 3 px and adds deterministic noise. */
function degrade(img, noise) {
  const out = frame(img.width, img.height);
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 4;
      const l = img.data[(y * img.width + Math.max(0, x - 1)) * 4 + 1];
      const r = img.data[(y * img.width + Math.min(img.width - 1, x + 1)) * 4 + 1];
      const blurred = (l + 2 * img.data[i + 1] + r) / 4;
      out.data[i] = out.data[i + 1] = out.data[i + 2] = 16 + (blurred * 219) / 255 + rand() * noise;
    }
  }
  return out;
}

const NOW = 1_763_700_000_123; // a 2025 timestamp, 41 bits

test('encodes 64 cells: sync row, 48 data bits, CRC', () => {
  const bits = encodeBits(NOW);
  assert.equal(bits.length, 64);
  assert.deepEqual(bits.slice(0, 8), [1, 0, 1, 0, 1, 0, 1, 0]);
  assert.equal(crc8([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]), 0xf4); // CRC-8/SMBUS check value
});

for (const [w, h] of [[640, 360], [320, 180], [160, 90], [427, 240]]) {
  test(`decodes after scaling to ${w}x${h}, blur and noise`, () => {
    const src = frame(640, 360);
    drawBarcode(src, 640, 360, NOW);
    const scaled = w === 640 ? src : scale(src, w, h);
    assert.equal(decodeBarcode(degrade(scaled, 40)), NOW);
  });
}

test('decodes a barcode drawn at the size of the frame it is read from', () => {
  const src = frame(1280, 720);
  drawBarcode(src, 1280, 720, NOW + 1);
  assert.equal(decodeBarcode(src), NOW + 1);
});

test('every timestamp bit survives', () => {
  for (let bit = 0; bit < 48; bit++) {
    const ms = 2 ** bit;
    const src = frame(160, 90);
    drawBarcode(src, 160, 90, ms);
    assert.equal(decodeBarcode(src), ms, `bit ${bit}`);
  }
});

test('a frame without a barcode decodes to null', () => {
  assert.equal(decodeBarcode(frame(160, 90)), null); // flat grey
  const black = frame(160, 90);
  black.data.fill(0);
  assert.equal(decodeBarcode(black), null);
});

test('a single flipped data cell is rejected by the CRC', () => {
  const src = frame(640, 360);
  drawBarcode(src, 640, 360, NOW);
  const cell = { x: 3 * 80 + 40, y: 2 * 34 + 17 }; // row 2, column 3: a data cell
  const i = (cell.y * 640 + cell.x) * 4;
  const flipped = src.data[i + 1] > 128 ? '#000000' : '#ffffff';
  src.fillStyle = flipped;
  src.fillRect(3 * 80, 2 * 34 + 2, 80, 30);
  assert.equal(decodeBarcode(src), null);
});
