// End-to-end check of the publish and watch pages through a running Fanout server: a publisher
// page goes live with the fake camera and microphone (3-layer simulcast), a viewer page plays it
// over WHEP, and we assert on what the viewer's RTCPeerConnection decoded.
//
//   node test/publish_watch.mjs --base http://127.0.0.1:8080 --stream ID --key KEY
//        [--seconds N] [--pin q|h|f] [--codec vp8|h264] [--no-simulcast] [--token JWT]
//        [--width 1280 --height 720] [--timeout 15]
//
// Prints one JSON line (see docs/web.md) and exits 0 on success, 1 on failure.

import {
  parseArgs, run, openPage, pageUrl, waitFor, sleep, viewerStats, publisherLayers, log,
} from './harness.mjs';

const args = parseArgs(process.argv.slice(2), {
  base: '', stream: '', key: '', seconds: 0, pin: '', codec: 'vp8', simulcast: true, token: '',
  width: 1280, height: 720, timeout: 15,
}, ['base', 'stream', 'key']);
const timeoutMs = args.timeout * 1000;

run(3 * timeoutMs + args.seconds * 1000 + 60_000, async (browser, partial) => {
  const started = Date.now();
  const pub = await openPage(browser, pageUrl(args.base, 'publish.html', {
    stream: args.stream, key: args.key, autostart: 1, codec: args.codec,
    simulcast: args.simulcast ? 1 : 0, width: args.width, height: args.height,
  }), 'publish');
  await waitFor(async () => {
    const { state, error } = await pub.evaluate(() => ({
      state: window.fanout?.client?.state, error: window.fanout?.client?.lastError?.message,
    }));
    if (state === 'failed') throw new Error(`publisher failed: ${error}`);
    return state === 'connected';
  }, { timeoutMs, what: 'the publisher to connect' });
  partial.publishMs = Date.now() - started;

  const view = await openPage(browser, pageUrl(args.base, 'watch.html', {
    stream: args.stream, token: args.token,
  }), 'watch');
  const viewStarted = Date.now();
  const first = await waitFor(async () => {
    const s = await viewerStats(view);
    partial.viewer = s;
    return s.video?.framesDecoded > 30 && s.video.frameWidth > 0 && s.audio?.packetsReceived > 0 && s;
  }, { timeoutMs, what: 'the viewer to decode > 30 frames and receive audio' });
  const firstMediaMs = Date.now() - viewStarted;

  // Still flowing, not a burst that stopped.
  await sleep(1000);
  const later = await viewerStats(view);
  if (!(later.video.framesDecoded > first.video.framesDecoded)) throw new Error('video stopped decoding');
  if (!(later.audio.packetsReceived > first.audio.packetsReceived)) throw new Error('audio stopped arriving');

  // The page's own latency (server to screen), once the browser has had a sender report.
  const { latencyMs } = await waitFor(async () => {
    const l = await view.evaluate(() => window.fanout?.latencyMs);
    return typeof l === 'number' && { latencyMs: l };
  }, { timeoutMs, what: 'the watch page to know its latency' });

  const result = {
    publishMs: partial.publishMs,
    latencyMs: Math.round(latencyMs),
    firstMediaMs,
    framesDecoded: later.video.framesDecoded,
    frameWidth: later.video.frameWidth,
    frameHeight: later.video.frameHeight,
    audioPacketsReceived: later.audio.packetsReceived,
    publisherLayers: await publisherLayers(pub),
  };

  if (args.seconds > 0) {
    const a = await viewerStats(view);
    await sleep(args.seconds * 1000);
    const b = await viewerStats(view);
    const frames = b.video.framesDecoded - a.video.framesDecoded;
    result.run = {
      seconds: args.seconds,
      fps: Math.round((frames * 10000) / (b.video.timestamp - a.video.timestamp)) / 10,
      videoKbps: Math.round((b.video.bytesReceived - a.video.bytesReceived) * 8 / args.seconds / 1000),
      packetsLost: b.video.packetsLost,
      state: b.state,
    };
    if (frames <= 0) throw new Error(`no frames decoded in the last ${args.seconds} s`);
  }

  if (args.pin) result.pin = await pinLayer(view, pub, args.pin, timeoutMs);

  const errors = [...pub.fanoutErrors, ...view.fanoutErrors];
  if (errors.length) throw new Error(`uncaught page errors: ${errors.join('; ')}`);
  return result;
});

/**
 * Pins `rid` through the watch page's layer selector and waits until the viewer decodes frames
 * as wide as the publisher's `rid` encoding. When the viewer already gets that width, it first
 * pins a contrasting layer, so that the test sees a switch actually happen.
 */
async function pinLayer(view, pub, rid, timeoutMs) {
  const widthOf = async (r) => (await publisherLayers(pub)).find((l) => l.rid === r)?.frameWidth;
  if (!(await widthOf(rid))) throw new Error(`the publisher sends no layer "${rid}"`);
  const viewerWidth = async () => (await viewerStats(view)).video?.frameWidth ?? 0;
  const pinAndWait = async (r) => {
    await view.check(`input[name=layer][value="${r}"]`);
    const t0 = Date.now();
    await waitFor(async () => (await viewerWidth()) === (await widthOf(r)), {
      timeoutMs, what: `the viewer to receive layer ${r} (${await widthOf(r)} px wide)`,
    });
    return Date.now() - t0;
  };

  let widthBefore = await viewerWidth();
  if (widthBefore === (await widthOf(rid))) {
    const contrast = rid === 'f' ? 'q' : 'f';
    log(`viewer already receives ${widthBefore} px; pinning ${contrast} first`);
    await pinAndWait(contrast);
    widthBefore = await viewerWidth();
  }
  const switchMs = await pinAndWait(rid);
  const widthAfter = await viewerWidth();
  const layer = await view.evaluate(() => window.fanout.client.getLayer());
  if (layer.mode !== 'pinned' || layer.rid !== rid) {
    throw new Error(`layer API says ${JSON.stringify(layer)} after pinning ${rid}`);
  }
  if (widthAfter === widthBefore) throw new Error(`frame width stayed ${widthAfter} px`);
  return { rid, widthBefore, widthAfter, switchMs, layer };
}
