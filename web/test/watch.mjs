// Watches a stream on the watch page (no publisher of its own) until the viewer's
// RTCPeerConnection has decoded video and plays audio, then checks both still advance.
// For streams something else publishes: RTMP or SRT ingest, another script, a test's peer.
//
//   node test/watch.mjs --base URL --stream ID [--frames 60] [--timeout 30] [--token JWT]
//
// "Plays audio" is measured on the received track itself (Web Audio, an AnalyserNode): its
// RMS level is above silence. Headless Chromium has no audio output, so the receiver's own
// totalAudioEnergy stays 0; the playout counters are reported beside the level.
//
// stdout: one JSON line {"ok":true, "firstFrameMs", "framesDecoded", "frameWidth",
// "frameHeight", "videoCodec", "audioCodec", "audioPacketsReceived", "audioLevel" (RMS, 0..1),
// "audioPeakHz" (the loudest frequency), "totalSamplesReceived", "concealedSamples"};
// exit 1 on failure (ok:false, error, and the last stats seen).

import { parseArgs, run, openPage, pageUrl, waitFor, sleep } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), {
  base: '', stream: '', frames: 60, timeout: 30, token: '',
}, ['base', 'stream']);
const timeoutMs = args.timeout * 1000;
/** RMS below this is silence (16-bit dither is about 3e-5). */
const SILENCE = 0.001;

run(2 * timeoutMs + 30_000, async (browser, partial) => {
  const view = await openPage(browser, pageUrl(args.base, 'watch.html', {
    stream: args.stream, token: args.token,
  }), 'watch');
  const opened = Date.now();
  const first = await waitFor(async () => {
    const s = await stats(view);
    partial.last = s;
    if (s.error) throw new Error(`the watch page failed: ${s.error}`);
    if (partial.firstFrameMs === undefined && s.video?.framesDecoded > 0) {
      partial.firstFrameMs = Date.now() - opened;
    }
    return s.video?.framesDecoded > args.frames && s.video.frameWidth > 0
      && s.audio?.packetsReceived > 0 && s;
  }, { timeoutMs, what: `the viewer to decode > ${args.frames} frames and receive audio` });
  const audio = await waitFor(async () => {
    const a = await audioLevel(view);
    partial.audio = a;
    return a && a.level > SILENCE && a;
  }, { timeoutMs, what: 'the received audio to be louder than silence' });

  // Still flowing, not a burst that stopped.
  await sleep(1000);
  const later = await waitFor(async () => {
    const s = await stats(view);
    partial.last = s;
    return s.video.framesDecoded > first.video.framesDecoded
      && s.audio.packetsReceived > first.audio.packetsReceived && s;
  }, { timeoutMs, what: 'video and audio to keep arriving' });

  if (view.fanoutErrors.length) throw new Error(`uncaught page errors: ${view.fanoutErrors.join('; ')}`);
  return {
    firstFrameMs: partial.firstFrameMs,
    framesDecoded: later.video.framesDecoded,
    frameWidth: later.video.frameWidth,
    frameHeight: later.video.frameHeight,
    videoCodec: later.video.codec,
    audioCodec: later.audio.codec,
    audioPacketsReceived: later.audio.packetsReceived,
    audioLevel: Math.round(audio.level * 10000) / 10000,
    audioPeakHz: Math.round(audio.peakHz),
    totalSamplesReceived: later.audio.totalSamplesReceived,
    concealedSamples: later.audio.concealedSamples,
  };
});

/**
 * The received audio track's RMS level and loudest frequency over one analyser window, through
 * an AnalyserNode the page keeps (made at the first call); null before there is a track.
 */
function audioLevel(page) {
  return page.evaluate(async () => {
    const receiver = window.fanout?.client?.pc?.getReceivers().find((r) => r.track?.kind === 'audio');
    if (!receiver) return null;
    if (window.watchLevel?.track !== receiver.track) {
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      ctx.createMediaStreamSource(new MediaStream([receiver.track])).connect(analyser);
      window.watchLevel = { track: receiver.track, ctx, analyser };
    }
    const { ctx, analyser } = window.watchLevel;
    const wave = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(wave);
    const level = Math.sqrt(wave.reduce((sum, x) => sum + x * x, 0) / wave.length);
    const spectrum = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(spectrum);
    let peak = 1;
    for (let i = 1; i < spectrum.length; i += 1) if (spectrum[i] > spectrum[peak]) peak = i;
    return { level, peakHz: (peak * ctx.sampleRate) / analyser.fftSize };
  });
}

/** The page's inbound video and audio, with the codec of each and the audio playout counters. */
function stats(page) {
  return page.evaluate(async () => {
    const client = window.fanout?.client;
    const all = client?.pc ? [...(await client.pc.getStats()).values()] : [];
    const codecOf = (s) => all.find((c) => c.id === s.codecId)?.mimeType ?? null;
    const inbound = (kind) => all.find((s) => s.type === 'inbound-rtp' && s.kind === kind);
    const v = inbound('video');
    const a = inbound('audio');
    return {
      state: client?.state ?? 'none',
      error: client?.state === 'failed' ? (client?.lastError?.message ?? 'failed') : null,
      video: v ? {
        framesDecoded: v.framesDecoded ?? 0,
        frameWidth: v.frameWidth ?? 0,
        frameHeight: v.frameHeight ?? 0,
        codec: codecOf(v),
      } : null,
      audio: a ? {
        packetsReceived: a.packetsReceived ?? 0,
        totalSamplesReceived: a.totalSamplesReceived ?? 0,
        concealedSamples: a.concealedSamples ?? 0,
        codec: codecOf(a),
      } : null,
    };
  });
}
