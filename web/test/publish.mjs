// Publishes from the publish page (fake camera + mic, simulcast) and keeps it live, for tests
// that watch from another process or network namespace.
//
//   node test/publish.mjs --base URL --stream ID --key KEY [--seconds 60] [--codec vp8|h264|vp9|av1]
//        [--no-simulcast] [--width 1280 --height 720] [--relay] [--timeout 15]
//
// --relay: media only through the TURN servers the server offers (iceTransportPolicy relay).
//
// Prints `{"event":"live",...}` once connected, then `{"ok":true,...}` at the end.

import { parseArgs, run, openPage, pageUrl, waitFor, sleep, publisherLayers, viewerStats } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), {
  base: '', stream: '', key: '', seconds: 60, codec: 'vp8', simulcast: true, width: 1280, height: 720, timeout: 15, relay: false,
}, ['base', 'stream', 'key']);

run(args.timeout * 1000 + args.seconds * 1000 + 30_000, async (browser, partial) => {
  const started = Date.now();
  const pub = await openPage(browser, pageUrl(args.base, 'publish.html', {
    stream: args.stream, key: args.key, autostart: 1, codec: args.codec,
    simulcast: args.simulcast ? 1 : 0, width: args.width, height: args.height, relay: args.relay ? 1 : '',
  }), 'publish');
  await waitFor(async () => (await pub.evaluate(() => window.fanout?.client?.state)) === 'connected', {
    timeoutMs: args.timeout * 1000, what: 'the publisher to connect',
  });
  partial.publishMs = Date.now() - started;
  const { candidateType } = await viewerStats(pub);
  process.stdout.write(`${JSON.stringify({ event: 'live', publishMs: partial.publishMs, candidateType })}\n`);
  await sleep(args.seconds * 1000);
  return { publishMs: partial.publishMs, layers: await publisherLayers(pub) };
});
