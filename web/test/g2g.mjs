// Glass-to-glass latency through a running Fanout server: the bench publisher draws the wall
// clock into its video as a barcode, the bench viewer reads it back from every frame it shows.
//
//   node test/g2g.mjs --base http://127.0.0.1:8080 --stream ID --key KEY
//        [--seconds 30] [--warmup 2] [--layer q|h|f] [--codec vp8|h264] [--no-simulcast]
//        [--no-audio] [--width 1280 --height 720 --fps 30] [--token JWT] [--timeout 15]
//        [--dump FILE]   # also write every sample, in order, as JSON
//   node test/g2g.mjs --loopback [--layer q|h|f] ...   # baseline without a server
//   node test/g2g.mjs --base URL --stream ID --no-publish [--label TEXT]
//        # watch only: the stream is already published (an RTMP/SRT push of fanout-push-test),
//        # its frames carry the test pattern's clock code (web/js/clockcode.js), not the barcode
//
// stdout: one JSON line (see docs/web.md); stderr: the same as a small table. Exit 1 on failure.

import { writeFile } from 'node:fs/promises';
import { parseArgs, run, openPage, pageUrl, waitFor, sleep, percentile, serveWeb, log } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), {
  base: '', stream: '', key: '', seconds: 30, warmup: 2, layer: '', codec: 'vp8', simulcast: true,
  audio: true, width: 1280, height: 720, fps: 30, token: '', timeout: 15, loopback: false, dump: '',
  publish: true, label: '',
}, (a) => (a.loopback ? [] : a.publish ? ['base', 'stream', 'key'] : ['base', 'stream']));
const timeoutMs = args.timeout * 1000;
const source = { codec: args.codec, width: args.width, height: args.height, fps: args.fps, audio: args.audio ? 1 : 0 };

run(2 * timeoutMs + (args.seconds + args.warmup) * 1000 + 60_000, async (browser, partial) => {
  let viewer;
  let server;
  if (args.loopback) {
    server = args.base ? null : await serveWeb();
    viewer = await openPage(browser, pageUrl(args.base || server.base, 'bench/loopback.html', {
      ...source, layer: args.layer,
    }), 'loopback');
  } else if (!args.publish) {
    viewer = await openPage(browser, pageUrl(args.base, 'bench/g2g-watch.html', {
      stream: args.stream, token: args.token, layer: args.layer, code: 'clock',
    }), 'g2g-watch');
  } else {
    const publisher = await openPage(browser, pageUrl(args.base, 'bench/g2g-publish.html', {
      ...source, stream: args.stream, key: args.key, simulcast: args.simulcast ? 1 : 0,
    }), 'g2g-publish');
    await waitFor(async () => {
      const s = await publisher.evaluate(() => window.g2gPublish);
      if (s?.state === 'failed') throw new Error(`publisher failed: ${s.error}`);
      return s?.state === 'connected';
    }, { timeoutMs, what: 'the publisher to connect' });
    viewer = await openPage(browser, pageUrl(args.base, 'bench/g2g-watch.html', {
      stream: args.stream, token: args.token, layer: args.layer,
    }), 'g2g-watch');
  }

  const probe = () => viewer.evaluate(() => {
    const { samples, ...rest } = window.g2g;
    return { ...rest, sampleCount: samples.length };
  });
  await waitFor(async () => {
    const g = await probe();
    partial.viewer = g;
    if (g.state === 'failed') throw new Error(`viewer failed: ${g.error}`);
    return g.sampleCount > 0;
  }, { timeoutMs, what: 'the first frame with a readable clock' });

  // Samples from the warm-up (bandwidth estimate ramping, layer switches) are not steady state.
  await sleep(args.warmup * 1000);
  const before = await probe();
  const from = before.sampleCount;
  await sleep(args.seconds * 1000);
  const g = await viewer.evaluate(() => window.g2g);
  // Mean time a frame waited in Chromium's jitter buffer over the same window (stats sums).
  const jb0 = before.jitterBuffer;
  const jb1 = g.jitterBuffer;
  const jitterBufferMs = jb0 && jb1 && jb1.emitted > jb0.emitted
    ? Math.round(((jb1.delayS - jb0.delayS) / (jb1.emitted - jb0.emitted)) * 10000) / 10 : null;
  const inOrder = g.samples.slice(from);
  if (args.dump) await writeFile(args.dump, JSON.stringify({ samples: inOrder }));
  const samples = [...inOrder].sort((a, b) => a - b);
  await server?.close();
  if (samples.length === 0) throw new Error('no readable frames after the warm-up');

  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  const result = {
    mode: args.loopback ? 'loopback' : 'server',
    label: args.label || null,
    seconds: args.seconds,
    samples: samples.length,
    p50Ms: percentile(samples, 50),
    p95Ms: percentile(samples, 95),
    p99Ms: percentile(samples, 99),
    minMs: samples[0],
    maxMs: samples[samples.length - 1],
    meanMs: Math.round(mean * 10) / 10,
    firstFrameMs: g.firstFrameMs,
    framesDecoded: g.framesDecoded,
    framesPresented: g.framesPresented,
    decodeFailures: g.decodeFailures,
    width: g.width,
    height: g.height,
    layer: g.layer?.rid ?? null,
    codec: args.publish ? args.codec : 'as pushed',
    timings: g.timings,
    jitterBufferMs,
  };
  printTable(result);
  const errors = browser.context.pages().flatMap((p) => p.fanoutErrors ?? []);
  if (errors.length) throw new Error(`uncaught page errors: ${errors.join('; ')}`);
  return result;
});

function printTable(r) {
  const rows = [
    ['glass-to-glass p50', `${r.p50Ms} ms`],
    ['glass-to-glass p95', `${r.p95Ms} ms`],
    ['glass-to-glass p99', `${r.p99Ms} ms`],
    ['min / mean / max', `${r.minMs} / ${r.meanMs} / ${r.maxMs} ms`],
    ['time to first frame', `${r.firstFrameMs} ms`],
    ['jitter buffer (mean)', `${r.jitterBufferMs ?? '-'} ms`],
    ['samples', `${r.samples} in ${r.seconds} s (${r.decodeFailures} unreadable frames)`],
    ['received', `${r.width}x${r.height}, layer ${r.layer ?? '-'}, ${r.codec}`],
  ];
  log(`\n${r.label ?? (r.mode === 'loopback' ? 'loopback (no server)' : 'through the server')}`);
  for (const [k, v] of rows) log(`  ${k.padEnd(22)} ${v}`);
}
