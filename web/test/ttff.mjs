// Time to first decoded frame over WHEP: one publisher stays live; viewers join one after
// another, each timed from the start of its WHEP attempt (offer, POST, ICE/DTLS, keyframe)
// to its first presented frame.
//
//   node test/ttff.mjs --base URL --stream ID --key KEY [--joins 20] [--gap 1500] [--timeout 15]
//
// stdout: {"ok":true,"joins":N,"p50Ms":..,"p95Ms":..,"maxMs":..,"samples":[..]}; stderr: a table.

import { parseArgs, run, openPage, pageUrl, waitFor, sleep, percentile, log } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), {
  base: '', stream: '', key: '', joins: 20, gap: 1500, timeout: 15,
}, ['base', 'stream', 'key']);
const timeoutMs = args.timeout * 1000;

run(timeoutMs * (args.joins + 2) + 60_000, async (browser, partial) => {
  const publisher = await openPage(browser, pageUrl(args.base, 'bench/g2g-publish.html', {
    stream: args.stream, key: args.key, simulcast: 1, width: 1280, height: 720, fps: 30, audio: 1,
  }), 'g2g-publish');
  await waitFor(async () => (await publisher.evaluate(() => window.g2gPublish))?.state === 'connected', {
    timeoutMs, what: 'the publisher to connect',
  });
  // Let the encoder ramp up so joins see a steady stream.
  await sleep(3000);
  const samples = [];
  const connected = [];
  partial.samples = samples;
  for (let i = 0; i < args.joins; i += 1) {
    const viewer = await openPage(browser, pageUrl(args.base, 'bench/g2g-watch.html', { stream: args.stream }), `viewer-${i}`);
    const first = await waitFor(async () => viewer.evaluate(() => window.g2g?.firstFrameMs ?? null), {
      timeoutMs, what: `viewer ${i} to show its first frame`,
    });
    samples.push(Math.round(first));
    const t = await viewer.evaluate(() => window.g2g?.timings);
    if (t?.connectedMs != null) connected.push(Math.round(t.connectedMs));
    await viewer.close();
    await sleep(args.gap);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const conn = [...connected].sort((a, b) => a - b);
  const result = {
    joins: samples.length,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
    connectedP50Ms: percentile(conn, 50),
    samples,
  };
  log('WHEP time to first frame');
  log('| joins | p50 ms | p95 ms | min ms | max ms | of which ICE+DTLS connected, p50 ms |');
  log('|---|---|---|---|---|---|');
  log(`| ${result.joins} | ${result.p50Ms} | ${result.p95Ms} | ${result.minMs} | ${result.maxMs} | ${result.connectedP50Ms} |`);
  return result;
});
