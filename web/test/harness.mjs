// Shared plumbing for the browser test scripts: argument parsing, launching Debian's headless
// Chromium through playwright-core, polling pages, and the one-JSON-line result contract the
// Rust test suite reads (stdout: exactly one JSON line; stderr: logs; exit code 0 = pass).

import { chromium } from 'playwright-core';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The flags every run uses (DESIGN.md, "Testing on this machine"). */
export const CHROMIUM_FLAGS = Object.freeze([
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
]);

/** Debian's build; $CHROMIUM overrides it (playwright downloads no browser here). */
export const CHROMIUM_PATH = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Parses `--name value` and bare `--flag` arguments against `defaults`, whose types decide the
 * parsing: a boolean default makes `--name` true and `--no-name` false, a number default parses
 * a number. `required` lists names that must be set (or is a function of the parsed args that
 * returns them). Bad usage prints `{ok: false, error}` and exits with status 2.
 */
export function parseArgs(argv, defaults, required = []) {
  try {
    const args = parseArgsOrThrow(argv, defaults);
    const names = typeof required === 'function' ? required(args) : required;
    for (const name of names) {
      if (args[name] === undefined || args[name] === '') throw new Error(`--${name} is required`);
    }
    return args;
  } catch (err) {
    // Same contract as a failed run: one JSON line, non-zero exit (2: bad usage).
    process.stdout.write(`${JSON.stringify({ ok: false, error: err.message })}\n`);
    process.exit(2);
  }
}

function parseArgsOrThrow(argv, defaults) {
  const args = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    let name = arg.slice(2);
    if (name.startsWith('no-') && typeof defaults[camel(name.slice(3))] === 'boolean') {
      args[camel(name.slice(3))] = false;
      continue;
    }
    name = camel(name);
    if (!(name in defaults)) throw new Error(`unknown option ${arg}`);
    if (typeof defaults[name] === 'boolean') {
      args[name] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    args[name] = typeof defaults[name] === 'number' ? Number(value) : value;
    if (Number.isNaN(args[name])) throw new Error(`${arg} needs a number`);
  }
  return args;
}

const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/** Browsers this process launched and has not closed; SIGTERM closes them before exiting. */
const openBrowsers = new Set();
process.once('SIGTERM', async () => {
  await Promise.all([...openBrowsers].map((b) => b.close()));
  process.exit(143);
});

/**
 * Launches Chromium with CHROMIUM_FLAGS and a fresh profile directory; `close()` removes it
 * (also on SIGTERM, which is how the end-to-end tests stop a script running in the background).
 * headless:false keeps playwright from adding its own --headless: ours is in the flags.
 */
export async function launchBrowser() {
  const profile = await mkdtemp(path.join(tmpdir(), 'fanout-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: false,
      args: [...CHROMIUM_FLAGS],
      viewport: { width: 1280, height: 800 },
      // Our SIGTERM handler closes the browser; playwright's own would kill it, leaving
      // Chromium's temporary directories behind.
      handleSIGTERM: false,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  let closing;
  const browser = {
    context,
    /** Idempotent: a second call (say, SIGTERM during a close) waits for the first. */
    close() {
      closing ??= (async () => {
        await context.close().catch(() => {});
        await rm(profile, { recursive: true, force: true });
        openBrowsers.delete(browser);
      })();
      return closing;
    },
  };
  openBrowsers.add(browser);
  return browser;
}

/**
 * Opens a page; its console (prefixed with `label` and the time in ms) and uncaught errors go
 * to stderr. Uncaught errors are also kept in `page.fanoutErrors` so a script can fail on them.
 */
export async function openPage(browser, url, label) {
  const page = await browser.context.newPage();
  page.fanoutErrors = [];
  page.on('console', (msg) => log(`[${label} ${Date.now()}] ${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => {
    page.fanoutErrors.push(err.message);
    log(`[${label}] uncaught: ${err.message}`);
  });
  await page.goto(url);
  return page;
}

/** Polls `probe` until it returns something truthy; throws with `what` after `timeoutMs`. */
export async function waitFor(probe, { timeoutMs, intervalMs = 250, what }) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** True inside a network namespace whose only interface is lo, where WebRTC tests belong. */
export function isIsolated() {
  return Object.values(networkInterfaces()).flat().every((a) => a.internal);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function log(line) {
  process.stderr.write(`${line}\n`);
}

/** Builds `${base}/${page}?${query}`, leaving out undefined and empty values. */
export function pageUrl(base, page, query) {
  const url = new URL(page, base.endsWith('/') ? base : `${base}/`);
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url.href;
}

/**
 * Runs a test body with a browser and prints its single JSON result line. The body returns the
 * result object; throwing (or a hard timeout) prints `{ok: false, error, ...partial}` and exits 1.
 * `partial` lets the body record what it knew before failing.
 */
export async function run(hardTimeoutMs, body) {
  const partial = {};
  let browser;
  const timer = setTimeout(() => finish({ ok: false, error: `hard timeout after ${hardTimeoutMs} ms`, ...partial }, 1), hardTimeoutMs);
  async function finish(result, code) {
    clearTimeout(timer);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    await browser?.close();
    process.exit(code);
  }
  if (!isIsolated()) {
    log('warning: interfaces other than lo are up; WebRTC between processes needs `unshare -n` (docs/web.md)');
  }
  try {
    browser = await launchBrowser();
    const result = await body(browser, partial);
    await finish({ ok: true, ...result }, 0);
  } catch (err) {
    await finish({ ok: false, error: err.message, ...partial }, 1);
  }
}

/** Inbound RTP counters of the WHEP client a page exposes as window.fanout.client. */
export function viewerStats(page) {
  return page.evaluate(async () => {
    const client = window.fanout?.client;
    const pc = client?.pc;
    const stats = pc ? [...(await pc.getStats()).values()] : [];
    const pick = (kind) => stats.find((s) => s.type === 'inbound-rtp' && s.kind === kind);
    const video = pick('video');
    const audio = pick('audio');
    // The local candidate of the pair in use: 'host', 'srflx' or 'relay' (through TURN).
    const transport = stats.find((s) => s.type === 'transport');
    const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
    const local = stats.find((s) => s.id === pair?.localCandidateId);
    return {
      state: client?.state ?? 'none',
      error: client?.lastError?.message ?? null,
      candidateType: local?.candidateType ?? null,
      video: video ? {
        framesDecoded: video.framesDecoded ?? 0,
        frameWidth: video.frameWidth ?? 0,
        frameHeight: video.frameHeight ?? 0,
        bytesReceived: video.bytesReceived ?? 0,
        packetsLost: video.packetsLost ?? 0,
        nackCount: video.nackCount ?? 0,
        pliCount: video.pliCount ?? 0,
        retransmittedPacketsReceived: video.retransmittedPacketsReceived ?? 0,
        timestamp: video.timestamp,
      } : null,
      audio: audio ? { packetsReceived: audio.packetsReceived ?? 0, bytesReceived: audio.bytesReceived ?? 0 } : null,
    };
  });
}

/** Outbound video layers of the WHIP client a page exposes as window.fanout.client. */
export function publisherLayers(page) {
  return page.evaluate(async () => {
    const pc = window.fanout?.client?.pc;
    const stats = pc ? [...(await pc.getStats()).values()] : [];
    return stats
      .filter((s) => s.type === 'outbound-rtp' && s.kind === 'video')
      .map((s) => ({
        rid: s.rid ?? null,
        frameWidth: s.frameWidth ?? 0,
        frameHeight: s.frameHeight ?? 0,
        framesEncoded: s.framesEncoded ?? 0,
        bytesSent: s.bytesSent ?? 0,
      }));
  });
}

const WEB_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

/**
 * Serves web/ on 127.0.0.1 (a free port) the way the signaling server does, for runs without a
 * server. `handle(req, res)` may answer a request first (mock endpoints) by returning true.
 */
export async function serveWeb(handle = () => false) {
  const server = createServer(async (req, res) => {
    if (await handle(req, res)) return;
    let { pathname } = new URL(req.url, 'http://localhost');
    if (pathname.endsWith('/')) pathname += 'index.html';
    const file = path.join(WEB_ROOT, path.normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, ''));
    const type = CONTENT_TYPES[path.extname(file)];
    if (!file.startsWith(WEB_ROOT) || file.includes(`${path.sep}node_modules${path.sep}`) || !type) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
