// The pages and the WHIP/WHEP clients in headless Chromium, without a Fanout server: web/ is
// served by the harness, and a mock signaling endpoint answers offers with a second page's
// RTCPeerConnection (the "server"). Covers what the server's own end-to-end tests cannot pin
// down as cheaply: the offer's shape, the HTTP contract, retry, reconnection, the layer API
// calls, the barcode through real scaling and coding.
//
//   cd web && npm test                # the WebRTC cases are skipped unless isolated:
//   cd web && npm run test:isolated   # (root) the same inside `unshare -n` with only lo up

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, serveWeb, openPage, waitFor, viewerStats, pageUrl, isIsolated } from './harness.mjs';

// WebRTC traffic must stay on loopback (DESIGN.md): every case that creates an
// RTCPeerConnection (even one that only gathers candidates) runs where lo is the only interface.
const webrtc = isIsolated() ? {} : { skip: 'needs a network namespace with only lo: unshare -n' };

let browser;
let web;
let answerer; // the page whose RTCPeerConnections play the server's side
const mock = { requests: [], sessions: 0, layer: new Map() };

before(async () => {
  web = await serveWeb(mockSignaling);
  browser = await launchBrowser();
  answerer = await openPage(browser, `${web.base}index.html`, 'answerer');
  await answerer.evaluate(installAnswerer);
});

after(async () => {
  await browser?.close();
  await web?.close();
});

/** Answers /mock/* like the signaling server would; returns false for everything else. */
async function mockSignaling(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (!url.pathname.startsWith('/mock/')) return false;
  let body = '';
  for await (const chunk of req) body += chunk;
  mock.requests.push({
    method: req.method, path: url.pathname, body,
    auth: req.headers.authorization ?? null, type: req.headers['content-type'] ?? null,
  });
  const [, , kind, what, extra] = url.pathname.split('/'); // /mock/{whip|whep|session}/{..}/{layer}
  if (req.method === 'POST' && what === '401') return reply(res, 401, 'bad stream key');
  if (req.method === 'POST' && what === '404') return reply(res, 404, 'not live');
  if (req.method === 'POST' && what === 'ok') {
    const id = ++mock.sessions;
    mock.layer.set(String(id), { mode: 'auto', rid: 'f', available: ['q', 'h', 'f'], estimateBps: 2_000_000 });
    const answer = await answerer.evaluate(([offer, send]) => window.answer(offer, send), [body, kind === 'whep']);
    res.writeHead(201, { 'Content-Type': 'application/sdp', Location: `/mock/session/${id}`, ETag: `"${id}"` });
    res.end(answer);
    return true;
  }
  if (kind === 'session' && extra === 'layer' && req.method === 'GET') {
    return reply(res, 200, JSON.stringify(mock.layer.get(what)), 'application/json');
  }
  if (kind === 'session' && extra === 'layer' && req.method === 'POST') {
    const { rid } = JSON.parse(body);
    Object.assign(mock.layer.get(what), { mode: rid ? 'pinned' : 'auto', rid: rid ?? 'f' });
    return reply(res, 204, '');
  }
  if (kind === 'session' && req.method === 'DELETE') return reply(res, 200, '');
  return reply(res, 405, 'unexpected request');
}

function reply(res, status, body, type = 'text/plain') {
  res.writeHead(status, { 'Content-Type': type }).end(body);
  return true;
}

const requests = (method, prefix) => mock.requests.filter((r) => r.method === method && r.path.startsWith(prefix));

/**
 * Runs in the answerer page: window.answer(offer, send) -> answer SDP, like an SFU would. What
 * it sends to viewers is the clock source, so the glass-to-glass viewer can read it.
 */
async function installAnswerer() {
  const { ClockSource } = await import('./bench/clock-source.js');
  window.media = new ClockSource({ width: 640, height: 360 }).start();
  window.pcs = [];
  window.answer = async (offer, send) => {
    const pc = new RTCPeerConnection();
    window.pcs.push(pc);
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    if (send) {
      for (const t of pc.getTransceivers()) {
        const track = window.media.getTracks().find((tr) => tr.kind === t.receiver.track.kind);
        await t.sender.replaceTrack(track);
        t.direction = 'sendonly';
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise((resolve) => pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      }));
    }
    return pc.localDescription.sdp;
  };
}

/** Opens a page and fails the test on any uncaught error or missing script/stylesheet. */
async function open(path, query, label) {
  const page = await browser.context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && /\.(js|css|html)$/.test(new URL(r.url()).pathname)) problems.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(pageUrl(web.base, path, query));
  page.problems = problems;
  return page;
}

const state = (page) => page.evaluate(() => window.fanout?.client?.state ?? null);

test('every page loads its modules without errors', async () => {
  for (const path of ['index.html', 'publish.html', 'watch.html']) {
    const page = await open(path, {}, path);
    await page.waitForLoadState('networkidle');
    assert.deepEqual(page.problems, [], path);
    if (path !== 'index.html') assert.ok(await page.evaluate(() => 'fanout' in window), `${path} ran its module`);
    await page.close();
  }
});

test('bench pages start on load and report through their globals', webrtc, async () => {
  const pub = await open('bench/g2g-publish.html', { stream: 's', key: 'k', whip: '/mock/whip/401' }, 'g2g-publish');
  const publishing = await waitFor(async () => {
    const s = await pub.evaluate(() => window.g2gPublish);
    return s.state === 'failed' && s.framesDrawn > 10 && s;
  }, { timeoutMs: 10000, what: 'a refused publisher that still draws' });
  assert.match(publishing.error, /401/);
  const view = await open('bench/g2g-watch.html', { stream: 's', whep: '/mock/whep/404' }, 'g2g-watch');
  await waitFor(async () => (await view.evaluate(() => window.g2g.state)) === 'reconnecting', { timeoutMs: 10000, what: 'retrying viewer' });
  assert.deepEqual([...pub.problems, ...view.problems], []);
  await pub.close();
  await view.close();
});

test('index page remembers the admin token and opened streams', async () => {
  const page = await open('index.html', {}, 'index');
  await page.fill('#admin-token', 'secret');
  await page.dispatchEvent('#admin-token', 'change');
  await page.fill('#open-id', 'abc123');
  await page.click('#open-form button');
  await page.reload();
  assert.equal(await page.inputValue('#admin-token'), 'secret');
  assert.equal(await page.getAttribute('[data-link=watch]', 'href'), 'watch.html?stream=abc123');
  assert.deepEqual(page.problems.filter((p) => !p.includes('/api/v1/')), []);
  await page.close();
});

test('barcode survives canvas downscaling and JPEG coding', async () => {
  const page = await open('index.html', {}, 'barcode');
  const results = await page.evaluate(async () => {
    const { drawBarcode, decodeBarcode } = await import('./bench/barcode.js');
    const stamp = Date.now();
    const src = Object.assign(document.createElement('canvas'), { width: 640, height: 360 });
    drawBarcode(src.getContext('2d'), 640, 360, stamp);
    const out = [];
    for (const [w, h, quality] of [[640, 360, 0.9], [320, 180, 0.5], [160, 90, 0.3], [213, 120, 0.3]]) {
      const small = Object.assign(document.createElement('canvas'), { width: w, height: h });
      small.getContext('2d').drawImage(src, 0, 0, w, h);
      const img = new Image();
      img.src = small.toDataURL('image/jpeg', quality);
      await img.decode();
      const back = Object.assign(document.createElement('canvas'), { width: w, height: h });
      const ctx = back.getContext('2d');
      ctx.drawImage(img, 0, 0);
      out.push({ size: `${w}x${h}`, ok: decodeBarcode(ctx.getImageData(0, 0, w, h)) === Math.round(stamp) });
    }
    return out;
  });
  for (const r of results) assert.ok(r.ok, `decoded at ${r.size}`);
  await page.close();
});

test('WHIP: a refused key fails once, without retrying', webrtc, async () => {
  mock.requests.length = 0;
  const page = await open('publish.html', { stream: 's', key: 'wrong', whip: '/mock/whip/401', autostart: 1 }, 'whip-401');
  await waitFor(async () => (await page.textContent('#state')) === 'failed', { timeoutMs: 10000, what: 'failed state' });
  assert.match(await page.textContent('#error'), /401/);
  assert.equal(requests('POST', '/mock/whip/401').length, 1);
  assert.equal(requests('POST', '/mock/whip/401')[0].auth, 'Bearer wrong');
  await page.close();
});

test('WHEP: a stream that is not live yet is retried with backoff until stopped', webrtc, async () => {
  mock.requests.length = 0;
  const page = await open('watch.html', { stream: 's', whep: '/mock/whep/404' }, 'whep-404');
  await waitFor(async () => requests('POST', '/mock/whep/404').length >= 3, { timeoutMs: 10000, what: 'three attempts' });
  await page.click('#stop');
  await waitFor(async () => (await page.textContent('#state')) === 'stopped', { timeoutMs: 5000, what: 'stopped' });
  const attempts = requests('POST', '/mock/whep/404').length;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(requests('POST', '/mock/whep/404').length, attempts, 'no attempt after stop');
  await page.close();
});

test('publish page sends a 3-layer simulcast VP8 offer, goes live, and DELETEs on stop', webrtc, async () => {
  mock.requests.length = 0;
  const page = await open('publish.html', { stream: 's', key: 'k1', whip: '/mock/whip/ok', autostart: 1, width: 1280, height: 720 }, 'publish');
  await waitFor(async () => (await state(page)) === 'connected', { timeoutMs: 15000, what: 'publisher connected' });
  const [post] = requests('POST', '/mock/whip/ok');
  assert.equal(post.auth, 'Bearer k1');
  assert.equal(post.type, 'application/sdp');
  const video = post.body.split('m=')[2];
  assert.match(video, /^video /);
  assert.match(video, /a=simulcast:send q;h;f/);
  for (const rid of ['q', 'h', 'f']) assert.match(video, new RegExp(`a=rid:${rid} send`));
  assert.match(video, /a=rtpmap:\d+ VP8\/90000/);
  assert.doesNotMatch(video, /H264|VP9|AV1/);
  assert.match(post.body, /a=candidate/); // non-trickle: candidates are in the offer
  await page.click('#stop');
  await waitFor(async () => requests('DELETE', '/mock/session/').length === 1, { timeoutMs: 5000, what: 'DELETE' });
  assert.equal(requests('DELETE', '/mock/session/')[0].auth, 'Bearer k1');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('publish page offers only H.264, packetization-mode=1 first, when asked', webrtc, async () => {
  mock.requests.length = 0;
  const page = await open('publish.html', { stream: 's', key: 'k2', whip: '/mock/whip/ok', autostart: 1, codec: 'h264' }, 'publish-h264');
  await waitFor(async () => (await state(page)) === 'connected', { timeoutMs: 15000, what: 'publisher connected' });
  const video = requests('POST', '/mock/whip/ok')[0].body.split('m=')[2];
  const payloads = video.split('\r\n')[0].split(' ').slice(3);
  const first = new RegExp(`a=fmtp:${payloads[0]} .*packetization-mode=1.*`).exec(video);
  assert.ok(first, 'first payload type is packetization-mode=1');
  assert.doesNotMatch(video, /VP8|VP9|AV1/);
  await page.close();
});

test('watch page plays, pins a layer, reconnects after a loss, and DELETEs on stop', webrtc, async () => {
  mock.requests.length = 0;
  const first = `/mock/session/${mock.sessions + 1}`;
  const second = `/mock/session/${mock.sessions + 2}`;
  const page = await open('watch.html', { stream: 's', whep: '/mock/whep/ok' }, 'watch');
  await waitFor(async () => (await viewerStats(page)).video?.framesDecoded > 10, { timeoutMs: 15000, what: 'frames' });
  const stats = await viewerStats(page);
  assert.equal(stats.video.frameWidth, 640);
  assert.ok(stats.audio?.packetsReceived > 0, 'audio arrives');
  const offer = requests('POST', '/mock/whep/ok')[0].body;
  assert.match(offer, /m=audio[\s\S]*a=recvonly[\s\S]*m=video[\s\S]*a=recvonly/);
  await waitFor(async () => (await page.textContent('#layer')).startsWith('f (auto'), { timeoutMs: 5000, what: 'layer read-out' });

  await page.check('input[name=layer][value=q]');
  await waitFor(() => requests('POST', `${first}/layer`).length === 1, { timeoutMs: 5000, what: 'layer POST' });
  assert.deepEqual(JSON.parse(requests('POST', `${first}/layer`)[0].body), { rid: 'q' });

  // The "server" drops the session: the page must notice, DELETE it, and come back pinned.
  await answerer.evaluate(() => window.pcs.at(-1).close());
  await waitFor(() => requests('POST', `${second}/layer`).length === 1, { timeoutMs: 20000, what: 'reconnection' });
  assert.equal(await state(page), 'connected');
  assert.equal(requests('DELETE', first).length, 1);
  assert.deepEqual(JSON.parse(requests('POST', `${second}/layer`)[0].body), { rid: 'q' });
  await waitFor(async () => (await viewerStats(page)).video?.framesDecoded > 10, { timeoutMs: 15000, what: 'frames again' });

  await page.check('input[name=layer][value=""]');
  await waitFor(() => requests('POST', `${second}/layer`).length === 2, { timeoutMs: 5000, what: 'auto POST' });
  assert.deepEqual(JSON.parse(requests('POST', `${second}/layer`)[1].body), { rid: null });
  await page.click('#stop');
  await waitFor(() => requests('DELETE', second).length === 1, { timeoutMs: 5000, what: 'DELETE' });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('loopback glass-to-glass reads the clock from the 160x90 layer', webrtc, async () => {
  const page = await open('bench/loopback.html', { layer: 'q', width: 640, height: 360 }, 'loopback');
  const g = await waitFor(async () => {
    const r = await page.evaluate(() => window.g2g);
    assert.notEqual(r.state, 'failed', r.error);
    return r.samples.length >= 60 && r;
  }, { timeoutMs: 20000, what: '60 samples' });
  assert.deepEqual([g.width, g.height], [160, 90]);
  const sorted = [...g.samples].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1];
  assert.ok(median > 0 && median < 1000, `median latency ${median} ms`);
  assert.ok(g.decodeFailures < g.samples.length / 10, `${g.decodeFailures} unreadable frames`);
  assert.ok(g.firstFrameMs > 0, 'time to first frame recorded');
  await page.close();
});

test('glass-to-glass pages measure through WHIP and WHEP sessions', webrtc, async () => {
  const pub = await open('bench/g2g-publish.html', { stream: 's', key: 'k', whip: '/mock/whip/ok' }, 'g2g-publish');
  await waitFor(async () => (await pub.evaluate(() => window.g2gPublish.state)) === 'connected', { timeoutMs: 15000, what: 'publisher' });
  const view = await open('bench/g2g-watch.html', { stream: 's', whep: '/mock/whep/ok', layer: 'h' }, 'g2g-watch');
  const g = await waitFor(async () => {
    const r = await view.evaluate(() => window.g2g);
    return r.samples.length >= 30 && r.framesDecoded >= 30 && r.layer?.rid === 'h' && r;
  }, { timeoutMs: 20000, what: '30 samples and the pinned layer' });
  assert.deepEqual([g.width, g.height], [640, 360]);
  assert.ok(g.firstFrameMs > g.timings.connectedMs, 'first frame after the connection');
  const median = [...g.samples].sort((a, b) => a - b)[g.samples.length >> 1];
  assert.ok(median > 0 && median < 1000, `median latency ${median} ms`);
  assert.deepEqual([...pub.problems, ...view.problems], []);
  await pub.close();
  await view.close();
});
