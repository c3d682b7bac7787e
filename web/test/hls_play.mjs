// Plays a stream over LL-HLS in headless Chromium (hls.html, hls.js in low-latency mode) and
// reports what the viewer got, every second and in total.
//
//   node test/hls_play.mjs --base http://127.0.0.1:8080 [--stream test] [--seconds 60]
//        [--warmup 5] [--timeout 20] [--sync S] [--rate X] [--level N] [--behind S]
//        [--markdown]     # the stderr table as Markdown
//        [--trace FILE]   # also write every HLS request (url, sent, answered: ms) as JSON
//
// stdout: one JSON line per second {"event":"sample", "t": seconds since the page opened, ...}
// (hls.html's snapshot: latencyS, pdtLatencyMs, bufferedS, stalls, currentLevel, framesDecoded,
// g2gMs, ...), then the summary line {"ok": true|false, ...} last. stderr: page logs and the
// summary as a table. Exit 1 when nothing played within --timeout or the page threw.
// Percentiles leave out the first --warmup seconds after the first frame.

import { writeFile } from 'node:fs/promises';
import { parseArgs, run, openPage, pageUrl, waitFor, sleep, percentile, log } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), {
  base: '', stream: 'test', seconds: 60, warmup: 5, timeout: 20, sync: '', rate: '', level: '', behind: '', debug: '', trace: '', markdown: false,
}, ['base']);

run((args.timeout + args.seconds) * 1000 + 60_000, async (browser, partial) => {
  const opened = Date.now();
  // Every /hls/ request with its send and answer times (always kept: stall reports quote it).
  const trace = [];
  const sent = new Map();
  browser.context.on('request', (r) => sent.set(r, Date.now()));
  for (const event of ['requestfinished', 'requestfailed']) {
    browser.context.on(event, (r) => {
      if (r.url().includes('/hls/')) {
        trace.push({ url: r.url(), sent: sent.get(r), answered: Date.now(), failed: event === 'requestfailed' });
      }
      sent.delete(r);
    });
  }
  const page = await openPage(browser, pageUrl(args.base, 'hls.html', {
    stream: args.stream, sync: args.sync, rate: args.rate, level: args.level, behind: args.behind, debug: args.debug,
  }), 'hls');
  const snapshot = () => page.evaluate(() => window.hlsWatch.snapshot());
  const samples = [];
  const emit = (s) => {
    const sample = { event: 'sample', t: Math.round((s.at - opened) / 100) / 10, ...s };
    samples.push(sample);
    process.stdout.write(`${JSON.stringify(sample)}\n`);
  };

  await waitFor(async () => {
    const s = await snapshot();
    partial.last = s;
    if (s.state === 'failed') throw new Error(`player failed: ${s.error}`);
    return s.framesDecoded > 0 && s.playingSince !== null;
  }, { timeoutMs: args.timeout * 1000, what: 'the first decoded frame' });
  const firstFrameMs = Date.now() - opened;

  // One sample a second, on a fixed grid (a slow evaluate does not shift the later ones).
  const start = Date.now();
  let g2gFrom = null;
  for (let i = 1; i <= args.seconds; i++) {
    await sleep(Math.max(0, start + i * 1000 - Date.now()));
    const s = await snapshot();
    emit(s);
    partial.samples = samples.length;
    partial.last = s;
    if (i === args.warmup) g2gFrom = s.g2gSamples;
  }
  const g2gAll = await page.evaluate(() => window.hlsWatch.g2g.samples.slice());
  const errors = await page.evaluate(() => window.hlsWatch.errors);
  // Each stall with the HLS requests around it (sent from 2 s before to 1 s after; times
  // relative to the stall; `answeredMs: null`: still unanswered when the run ended).
  const pending = [...sent.entries()]
    .filter(([r]) => r.url().includes('/hls/'))
    .map(([r, t]) => ({ url: r.url(), sent: t, answered: null }));
  const stallReports = (await page.evaluate(() => window.hlsWatch.stallReports)).map((report) => ({
    ...report,
    requests: [...trace, ...pending]
      .filter((q) => q.sent >= report.at - 2000 && q.sent <= report.at + 1000)
      .sort((a, b) => a.sent - b.sent)
      .map((q) => ({
        path: new URL(q.url).pathname.replace(/^\/hls\/[^/]+\//, '') + new URL(q.url).search,
        sentMs: q.sent - report.at,
        answeredMs: q.answered === null ? null : q.answered - report.at,
        ...(q.failed ? { failed: true } : {}),
      })),
  }));

  const steady = samples.slice(args.warmup);
  const sorted = (xs) => xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  const stats = (xs) => {
    const s = sorted(xs);
    return { p50: percentile(s, 50), p95: percentile(s, 95), max: s.length ? s[s.length - 1] : null, n: s.length };
  };
  const g2g = stats(g2gAll.slice(g2gFrom ?? 0));
  const latency = stats(steady.map((s) => s.latencyS));
  const pdt = stats(steady.map((s) => s.pdtLatencyMs));
  const edgeLag = stats(steady.map((s) => s.edgeLagMs));
  let minFramesPerSecond = null;
  for (let i = 1; i < samples.length; i++) {
    const d = samples[i].framesDecoded - samples[i - 1].framesDecoded;
    minFramesPerSecond = minFramesPerSecond === null ? d : Math.min(minFramesPerSecond, d);
  }
  const last = samples[samples.length - 1];
  const result = {
    stream: args.stream,
    seconds: args.seconds,
    warmup: args.warmup,
    firstFrameMs,
    stalls: last.stalls,
    stalledMs: last.stalledMs,
    g2g: { p50Ms: g2g.p50, p95Ms: g2g.p95, p99Ms: percentile(sorted(g2gAll.slice(g2gFrom ?? 0)), 99), maxMs: g2g.max, samples: g2g.n, unreadable: last.g2gUnreadable },
    latency: { p50S: latency.p50, p95S: latency.p95, maxS: latency.max, targetS: last.targetLatencyS },
    pdtLatency: { p50Ms: pdt.p50, p95Ms: pdt.p95, maxMs: pdt.max },
    edgeLag: { p50Ms: edgeLag.p50, p95Ms: edgeLag.p95, maxMs: edgeLag.max },
    framesDecoded: last.framesDecoded,
    framesDropped: last.framesDropped,
    minFramesPerSecond,
    levels: [...new Set(samples.map((s) => `${s.currentLevel}:${s.width}x${s.height}`))],
    lastLevel: last.currentLevel,
    catchUps: last.catchUps,
    width: last.width,
    height: last.height,
    hlsErrors: errors,
    // Per stall: the media loads just before it (a slow part request, or none made).
    stallReports,
  };
  printTable(result);
  if (args.trace) await writeFile(args.trace, JSON.stringify(trace));
  if (page.fanoutErrors.length) throw new Error(`uncaught page errors: ${page.fanoutErrors.join('; ')}`);
  return result;
});

function printTable(r) {
  const ms = (v) => (v === null ? '-' : `${Math.round(v)} ms`);
  const s = (v) => (v === null ? '-' : `${v.toFixed(2)} s`);
  const rows = [
    ['glass-to-glass p50', ms(r.g2g.p50Ms)],
    ['glass-to-glass p95', ms(r.g2g.p95Ms)],
    ['glass-to-glass p99', ms(r.g2g.p99Ms)],
    ['glass-to-glass max', ms(r.g2g.maxMs)],
    ['hls.latency p50 / p95', `${s(r.latency.p50S)} / ${s(r.latency.p95S)} (target ${s(r.latency.targetS)})`],
    ['PDT latency p50 / p95', `${ms(r.pdtLatency.p50Ms)} / ${ms(r.pdtLatency.p95Ms)}`],
    ['edge age p50 / p95', `${ms(r.edgeLag.p50Ms)} / ${ms(r.edgeLag.p95Ms)} (newest media when its playlist arrived)`],
    ['hls.js settings', `liveSyncDuration ${args.sync || 'PART-HOLD-BACK'}, catch-up rate up to ${args.rate || 1.15} (page's own; hls.js's off), liveMaxLatencyDuration ${args.behind || '1.5 x target + TARGETDURATION'}, liveSyncOnStallIncrease 0.2, level ${args.level || 'auto'}`],
    ['catch-ups (speed-ups)', `${r.catchUps}`],
    ['stalls', `${r.stalls} (${(r.stalledMs / 1000).toFixed(1)} s stalled)`],
    ['levels seen', r.levels.join(', ')],
    ['frames', `${r.framesDecoded} decoded, ${r.framesDropped} dropped, min ${r.minFramesPerSecond}/s`],
    ['samples', `${r.g2g.samples} clock reads (${r.g2g.unreadable} unreadable), ${r.seconds} s after ${r.warmup} s warm-up`],
    ['time to first frame', `${r.firstFrameMs} ms`],
  ];
  if (args.markdown) {
    log('| measure | value |\n|---|---|');
    for (const [k, v] of rows) log(`| ${k} | ${v} |`);
    return;
  }
  log(`\nLL-HLS playback of ${r.stream} (hls.js, lowLatencyMode)`);
  for (const [k, v] of rows) log(`  ${k.padEnd(24)} ${v}`);
}
