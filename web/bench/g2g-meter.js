// Reads the clock barcode back from every frame a <video> presents and records
// glass-to-glass latency: the time the frame is expected on screen minus the time the
// publisher drew it. Publisher and viewer must share a clock (same machine, or NTP-synced).

import { decodeBarcode } from './barcode.js';

const DECODE_WIDTH = 320; // frames are read at most this wide: enough for the barcode, cheap

export class G2gMeter {
  /**
   * `results` is the object tests read (window.g2g); the meter fills it in place. `decode`
   * reads a frame's clock from RGBA pixels: the bench publisher's barcode by default, or
   * `decodeClockCode` (web/js/clockcode.js) for the server's and fanout-push-test's pattern.
   */
  constructor(video, results, decode = decodeBarcode) {
    this.video = video;
    this.decode = decode;
    this.results = Object.assign(results, {
      samples: [], // latency in ms, one per decoded frame, in order
      firstFrameMs: null, // from start() to the first presented frame
      framesPresented: 0,
      decodeFailures: 0, // presented frames that carried no readable barcode
      width: 0,
      height: 0,
    });
    this.canvas = document.createElement('canvas');
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    this.lastStamp = null;
  }

  /** `t0` (performance.now() time) is when the viewer started asking for the stream. */
  start(t0 = performance.now()) {
    this.t0 = t0;
    this.video.requestVideoFrameCallback((now, meta) => this.#onFrame(meta));
  }

  #onFrame(meta) {
    const r = this.results;
    const presented = performance.now();
    if (r.firstFrameMs === null) r.firstFrameMs = round1(presented - this.t0);
    r.framesPresented += 1;
    r.width = meta.width;
    r.height = meta.height;
    const stamp = this.#read(meta.width, meta.height);
    if (stamp === null) r.decodeFailures += 1;
    else if (stamp !== this.lastStamp) {
      // expectedDisplayTime is when the compositor shows the frame: the "glass" on this side.
      const shown = performance.timeOrigin + (meta.expectedDisplayTime ?? presented);
      r.samples.push(round1(shown - stamp));
      this.lastStamp = stamp;
    }
    this.video.requestVideoFrameCallback((now, m) => this.#onFrame(m));
  }

  #read(width, height) {
    const w = Math.min(width, DECODE_WIDTH);
    const h = Math.max(1, Math.round((height * w) / width));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.ctx.drawImage(this.video, 0, 0, w, h);
    return this.decode(this.ctx.getImageData(0, 0, w, h));
  }
}

const round1 = (x) => Math.round(x * 10) / 10;
