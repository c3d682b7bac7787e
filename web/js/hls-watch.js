// LL-HLS page: plays /hls/{stream}/master.m3u8 with hls.js in low-latency mode and shows how far
// behind live it is, three ways: hls.js's own estimate, PROGRAM-DATE-TIME of the playing
// position against this machine's clock, and (when the picture carries Fanout's clock code,
// as the test pattern does) the clock read back from each shown frame.
// Query: ?stream=ID (default test) [&autoplay=0] [&sync=SECONDS] (liveSyncDuration)
//        [&rate=X] (highest catch-up playback rate, default 1.15; 1 turns catch-up off)
//        [&level=N] (pinned level index)
//        [&behind=SECONDS] (liveMaxLatencyDuration: further behind, jump to live)
//        [&src=URL] (play this playlist instead: a private stream's signed hlsUrl).
// Tests read window.hlsWatch.snapshot() and window.hlsWatch.g2g.
// Viewer counts: every playlist request carries this page load's `sid`, and the page also
// sends it as a heartbeat every 20 s (counted behind a CDN that never forwards each player),
// with its PROGRAM-DATE-TIME latency once playing (the server's glass-to-glass histogram).

// hls.js is served from web/node_modules (package.json pins it); the server serves web/ as is.
import Hls from '../node_modules/hls.js/dist/hls.mjs';
import { decodeClockCode } from './clockcode.js';
import { decodeBarcode } from '../bench/barcode.js';
import { hlsConfig, dateAt, liveLimit, catchUpRate, StallCounter, newSessionId, sidLoaderConfig } from './hls-meter.js';
import { formatBps } from './stats.js';
import { postHeartbeat } from './api.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const video = $('video');
$('stream').value = params.get('stream') || 'test';

const numberParam = (name) => (params.has(name) ? Number(params.get(name)) : undefined);
const overrides = { liveSyncDuration: numberParam('sync'), debug: params.get('debug') === '1' || undefined };
const maxRate = numberParam('rate') ?? 1.15;

// Glass to glass: the clock code of each shown frame against Date.now() in the frame callback.
const G2G_KEEP = 100_000;
const canvas = document.createElement('canvas');
const ctx = canvas.getContext('2d', { willReadFrequently: true });

let hls = null;
let heartbeat = null;
const sid = newSessionId();
const HEARTBEAT_MS = 20_000;
let stalls = new StallCounter();
let playingFrag = null;
let frameCallback = null;
let edgeLagMs = null;

const g2g = { samples: [], last: null, unreadable: 0, presented: 0, lastStamp: null };
// The last media loads (parts and segments), so that a stall can be explained afterwards: a
// slow request, or none made. Each stall keeps a copy in window.hlsWatch.stallReports.
const RECENT_LOADS = 30;
const recentLoads = [];
window.hlsWatch = { state: 'idle', error: null, g2g, snapshot, hls: null, errors: [], catchUps: 0, stallReports: [] };

function setState(state) {
  window.hlsWatch.state = state;
  $('state').textContent = state;
  $('state').dataset.state = state === 'playing' ? 'connected' : state;
}

function showError(message) {
  window.hlsWatch.error = message;
  $('error').textContent = message;
}

function play() {
  stop();
  const id = $('stream').value.trim();
  if (!id) return;
  // A private stream plays from its signed URL (the hlsUrl of a viewer token), given as ?src=.
  const src = params.get('src') || `/hls/${encodeURIComponent(id)}/master.m3u8`;
  $('playlist').href = src;
  $('play').disabled = true;
  $('stop').disabled = false;
  showError('');
  stalls = new StallCounter();
  g2g.samples.length = 0;
  setState('loading');
  if (!Hls.isSupported()) {
    showError('this browser has no Media Source Extensions');
    setState('failed');
    return;
  }
  hls = new Hls({ ...hlsConfig(overrides), ...sidLoaderConfig(sid) });
  // The heartbeat also reports how far behind the source this player is (glass to glass by
  // PROGRAM-DATE-TIME), for the server's fanout_glass_to_glass_seconds histogram.
  const beat = () => {
    const latencyMs = window.hlsWatch.state === 'playing' ? snapshot().pdtLatencyMs : null;
    const body = latencyMs !== null && latencyMs >= 0
      ? { sid, latencyMs: Math.round(latencyMs), protocol: 'hls' }
      : { sid };
    postHeartbeat(id, body);
  };
  beat();
  heartbeat = setInterval(beat, HEARTBEAT_MS);
  window.hlsWatch.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    fillLevels(data.levels);
    const pin = numberParam('level');
    if (pin !== undefined && pin >= 0 && pin < data.levels.length) hls.currentLevel = pin;
  });
  hls.on(Hls.Events.FRAG_CHANGED, (_, data) => { playingFrag = data.frag; });
  recentLoads.length = 0;
  hls.on(Hls.Events.FRAG_LOADED, (_, { frag, part }) => {
    const { loading } = (part ?? frag).stats;
    recentLoads.push({
      type: frag.type,
      level: frag.level,
      sn: frag.sn,
      part: part?.index ?? null,
      requestedAt: Math.round(performance.timeOrigin + loading.start),
      firstByteMs: Math.round(loading.first - loading.start),
      loadedMs: Math.round(loading.end - loading.start),
    });
    if (recentLoads.length > RECENT_LOADS) recentLoads.shift();
  });
  // How old the newest media is when its playlist arrives: the source's and the packager's
  // share of the latency (capture, encode, part cut, publish), before the player's own.
  hls.on(Hls.Events.LEVEL_UPDATED, (_, { details }) => {
    // hls.js speeds up only while the latency is under target + min(limit, target + TD) and
    // seeks back to live only past the limit (liveMaxLatencyDuration; unset, it never does):
    // between the two a player that fell behind (a stall, a source that caught up in a burst)
    // stays behind for good. The limit therefore sits inside the speed-up range, at most
    // 2 x target + TD, and above the highest target stalls can raise it to (target + TD),
    // or hls.js would seek again and again: target + TD + target / 2, unless ?behind= says.
    if (hls.config.liveMaxLatencyDuration === undefined) {
      const target = overrides.liveSyncDuration ?? (details.partHoldBack || details.holdBack);
      hls.config.liveMaxLatencyDuration = numberParam('behind') ?? liveLimit(target, details.targetduration);
    }
    const date = dateAt(details.fragments[details.fragments.length - 1], details.edge);
    if (date !== null) edgeLagMs = Date.now() - date;
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    window.hlsWatch.errors.push({ at: Date.now(), type: data.type, details: data.details, fatal: data.fatal });
    if (!data.fatal) return;
    showError(`${data.type}: ${data.details}`);
    // The usual recovery: reload on network errors, rebuild the buffer on media errors.
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
    else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else setState('failed');
  });
  hls.loadSource(src);
  hls.attachMedia(video);
  watchFrames();
}

function stop() {
  if (heartbeat !== null) clearInterval(heartbeat);
  heartbeat = null;
  if (frameCallback !== null) video.cancelVideoFrameCallback?.(frameCallback);
  frameCallback = null;
  hls?.destroy();
  hls = null;
  window.hlsWatch.hls = null;
  playingFrag = null;
  edgeLagMs = null;
  video.removeAttribute('src');
  video.load();
  $('play').disabled = false;
  $('stop').disabled = true;
  setState('idle');
}

for (const type of ['playing', 'waiting']) {
  video.addEventListener(type, () => {
    if (type === 'waiting' && stalls.state === 'playing') {
      window.hlsWatch.stallReports.push({ at: Date.now(), ...bufferState(), loads: recentLoads.slice(-12) });
    }
    stalls.event(type, Date.now());
    if (hls) setState(type === 'playing' ? 'playing' : 'buffering');
  });
}

function bufferState() {
  return { currentTime: video.currentTime, bufferedAheadS: bufferAhead() };
}

function fillLevels(levels) {
  const select = $('level');
  select.length = 1;
  levels.forEach((l, i) => select.add(new Option(`${l.height}p · ${formatBps(l.bitrate)}`, String(i))));
}

$('level').addEventListener('change', (e) => {
  if (hls) hls.currentLevel = Number(e.target.value);
});

function watchFrames() {
  if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
  const onFrame = (_now, meta) => {
    const at = Date.now();
    frameCallback = video.requestVideoFrameCallback(onFrame);
    g2g.presented = meta.presentedFrames;
    const w = Math.min(320, video.videoWidth);
    const h = Math.round((w * video.videoHeight) / video.videoWidth);
    if (!w || !h) return;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    ctx.drawImage(video, 0, 0, w, h);
    // The test pattern's clock code, or the barcode the g2g bench publisher draws over WHIP.
    const image = ctx.getImageData(0, 0, w, h);
    const stamp = decodeClockCode(image) ?? decodeBarcode(image);
    if (stamp === null) {
      g2g.unreadable += 1;
      return;
    }
    if (stamp === g2g.lastStamp) return; // the same frame shown twice
    g2g.lastStamp = stamp;
    g2g.last = at - stamp;
    if (g2g.samples.length < G2G_KEEP) g2g.samples.push(g2g.last);
  };
  frameCallback = video.requestVideoFrameCallback(onFrame);
}

/** Seconds of media buffered ahead of the playhead. */
function bufferAhead() {
  for (let i = 0; i < video.buffered.length; i++) {
    if (video.buffered.start(i) <= video.currentTime && video.currentTime <= video.buffered.end(i)) {
      return video.buffered.end(i) - video.currentTime;
    }
  }
  return 0;
}

/** Everything the page shows, as one object (the test scripts sample it every second). */
function snapshot() {
  const now = Date.now();
  const quality = video.getVideoPlaybackQuality?.();
  const bufferedS = bufferAhead();
  const level = hls && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel] : null;
  const date = dateAt(playingFrag, video.currentTime);
  const playingDate = hls?.playingDate?.getTime() ?? null;
  return {
    at: now,
    state: window.hlsWatch.state,
    error: window.hlsWatch.error,
    currentTime: video.currentTime,
    latencyS: hls && Number.isFinite(hls.latency) ? hls.latency : null,
    targetLatencyS: hls?.targetLatency ?? null,
    pdtLatencyMs: date === null ? null : now - date,
    playingDateLatencyMs: playingDate === null ? null : now - playingDate,
    edgeLagMs,
    bufferedS,
    playbackRate: video.playbackRate,
    stalls: stalls.stalls,
    stalledMs: stalls.stalledMsAt(now),
    playingSince: stalls.firstPlayingAt,
    currentLevel: hls?.currentLevel ?? -1,
    width: video.videoWidth,
    height: video.videoHeight,
    levelBitrate: level?.bitrate ?? null,
    bandwidthEstimate: hls?.bandwidthEstimate ?? null,
    framesDecoded: quality?.totalVideoFrames ?? 0,
    framesDropped: quality?.droppedVideoFrames ?? 0,
    framesPresented: g2g.presented,
    g2gMs: g2g.last,
    g2gSamples: g2g.samples.length,
    g2gUnreadable: g2g.unreadable,
    errors: window.hlsWatch.errors.length,
    catchUps: window.hlsWatch.catchUps,
  };
}

// Back to the target latency by playing faster (catchUpRate in hls-meter.js), four times a
// second; `catchUps` counts the times it started speeding up.
function catchUp() {
  if (!hls) return;
  const rate = stalls.state === 'playing' ? catchUpRate(hls.latency, hls.targetLatency, bufferAhead(), maxRate) : 1;
  if (rate === video.playbackRate) return;
  if (video.playbackRate === 1) window.hlsWatch.catchUps += 1;
  video.playbackRate = rate;
}
setInterval(catchUp, 250);

const fmtS = (s) => (s === null ? '-' : `${s.toFixed(2)} s`);
const fmtMs = (ms) => (ms === null ? '-' : `${Math.round(ms)} ms`);

setInterval(() => {
  if (!hls) return;
  const s = snapshot();
  $('latency').textContent = fmtS(s.latencyS);
  $('target').textContent = fmtS(s.targetLatencyS);
  $('pdt-latency').textContent = fmtMs(s.pdtLatencyMs);
  $('edge-lag').textContent = fmtMs(s.edgeLagMs);
  $('g2g').textContent = s.g2gMs === null ? 'no clock code in the picture' : fmtMs(s.g2gMs);
  $('buffered').textContent = fmtS(s.bufferedS);
  $('rate').textContent = `${s.playbackRate.toFixed(2)}×`;
  $('level-now').textContent = s.currentLevel < 0 ? '-' : `${s.currentLevel}${hls.autoLevelEnabled ? ' (auto)' : ''}`;
  $('resolution').textContent = s.width ? `${s.width}×${s.height}` : '-';
  $('bitrate').textContent = s.levelBitrate ? formatBps(s.levelBitrate) : '-';
  $('estimate').textContent = s.bandwidthEstimate ? formatBps(s.bandwidthEstimate) : '-';
  $('frames').textContent = `${s.framesDecoded} / ${s.framesDropped}`;
  $('stalls').textContent = `${s.stalls} (${(s.stalledMs / 1000).toFixed(1)} s)`;
}, 500);

$('form').addEventListener('submit', (e) => { e.preventDefault(); play(); });
$('stop').addEventListener('click', stop);
$('unmute').addEventListener('click', () => { video.muted = false; video.play().catch(() => {}); });
addEventListener('pagehide', stop);

if (params.get('autoplay') !== '0') play();
