// Watches a stream from the watch page and prints one JSON line per sample, so a test can
// follow layer changes as they happen (e.g. while it shapes the viewer's link).
//
//   node test/watch_timeline.mjs --base URL --stream ID [--seconds 60] [--interval 500] [--timeout 15]
//        [--relay]   (media only through the server's TURN servers)
//
// Each sample: {"t":ms,"frameWidth":..,"fps":..,"framesDecoded":..,"kbps":..,"packetsLost":..,
// "nackCount":..,"pliCount":..,"retransmitted":..}.
// The last line: {"ok":true,"samples":N,...} (ok=false if video never decoded).

import { parseArgs, run, openPage, pageUrl, waitFor, sleep, viewerStats } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), {
  base: '', stream: '', seconds: 60, interval: 500, timeout: 15, token: '', relay: false,
}, ['base', 'stream']);

run(args.timeout * 1000 + args.seconds * 1000 + 30_000, async (browser, partial) => {
  const view = await openPage(browser, pageUrl(args.base, 'watch.html', { stream: args.stream, token: args.token, relay: args.relay ? 1 : '' }), 'watch');
  const t0 = Date.now();
  await waitFor(async () => (await viewerStats(view)).video?.framesDecoded > 0, {
    timeoutMs: args.timeout * 1000, what: 'the first decoded frame',
  });
  partial.firstFrameMs = Date.now() - t0;
  let prev = await viewerStats(view);
  let samples = 0;
  const end = Date.now() + args.seconds * 1000;
  while (Date.now() < end) {
    await sleep(args.interval);
    const s = await viewerStats(view);
    if (!s.video) continue;
    const dt = (s.video.timestamp - prev.video.timestamp) / 1000;
    const sample = {
      t: Date.now() - t0,
      frameWidth: s.video.frameWidth,
      framesDecoded: s.video.framesDecoded,
      fps: dt > 0 ? Math.round(((s.video.framesDecoded - prev.video.framesDecoded) / dt) * 10) / 10 : 0,
      kbps: dt > 0 ? Math.round(((s.video.bytesReceived - prev.video.bytesReceived) * 8) / dt / 1000) : 0,
      packetsLost: s.video.packetsLost,
      nackCount: s.video.nackCount,
      pliCount: s.video.pliCount,
      retransmitted: s.video.retransmittedPacketsReceived,
      state: s.state,
      candidateType: s.candidateType,
    };
    process.stdout.write(`${JSON.stringify(sample)}\n`);
    prev = s;
    samples += 1;
  }
  return { samples, firstFrameMs: partial.firstFrameMs, framesDecoded: prev.video.framesDecoded };
});
