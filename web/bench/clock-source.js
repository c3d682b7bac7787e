// A synthetic camera for latency measurement: a canvas that shows the wall clock as a barcode
// (see barcode.js) and as text, captured as a MediaStream, plus an optional test tone.

import { drawBarcode, BAND } from './barcode.js';

export class ClockSource {
  // 1280x720 by default: Chromium only sends the full simulcast layer from about 960x540 up
  // (a 640x360 source gets q and h only).
  constructor({ width = 1280, height = 720, fps = 30, audio = true } = {}) {
    this.canvas = document.createElement('canvas');
    this.canvas.width = width;
    this.canvas.height = height;
    this.fps = fps;
    this.audio = audio;
    this.framesDrawn = 0;
    this.ctx = this.canvas.getContext('2d', { alpha: false });
  }

  /** Starts drawing; returns the stream (video, and audio unless disabled). */
  start() {
    // captureStream(0) + requestFrame(): exactly one video frame per drawing, taken right after
    // the timestamp is drawn, instead of whenever the capture clock next samples the canvas.
    this.stream = this.canvas.captureStream(0);
    const [track] = this.stream.getVideoTracks();
    this.timer = setInterval(() => {
      this.#draw();
      track.requestFrame();
    }, 1000 / this.fps);
    if (this.audio) this.stream.addTrack(this.#tone());
    return this.stream;
  }

  stop() {
    clearInterval(this.timer);
    this.stream?.getTracks().forEach((t) => t.stop());
    this.audioContext?.close();
  }

  #draw() {
    const { ctx } = this;
    const { width, height } = this.canvas;
    const now = performance.timeOrigin + performance.now();
    drawBarcode(ctx, width, height, now);
    const top = Math.round(height * BAND);
    ctx.fillStyle = '#202020';
    ctx.fillRect(0, top, width, height - top);
    ctx.fillStyle = '#ffffff';
    ctx.font = `${Math.round((height - top) * 0.45)}px monospace`;
    ctx.textBaseline = 'middle';
    const clock = new Date(now).toISOString().slice(11, 23);
    ctx.fillText(`${clock}  #${this.framesDrawn}`, width * 0.03, top + (height - top) / 2);
    this.framesDrawn += 1;
  }

  /** A quiet 440 Hz tone, so audio packets flow the way a microphone's would. */
  #tone() {
    this.audioContext = new AudioContext();
    const osc = this.audioContext.createOscillator();
    const gain = this.audioContext.createGain();
    gain.gain.value = 0.05;
    const dest = this.audioContext.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    // Without a user gesture the context may start suspended (unless autoplay is allowed).
    this.audioContext.resume().catch(() => {});
    return dest.stream.getAudioTracks()[0];
  }
}
