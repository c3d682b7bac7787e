// LL-HLS page: plays /hls/{stream}/master.m3u8 with hls.js in low-latency mode and shows how far
// behind live it is, three ways: hls.js's own estimate, PROGRAM-DATE-TIME of the playing
// position against this machine's clock, and (when the picture carries Fanout's clock code,
// as the test pattern does) the clock read back from each shown frame.
// Query: ?stream=ID (default test) [&autoplay=0] [&sync=SECONDS] (liveSyncDuration)
//        [&rate=X] (maxLiveSyncPlaybackRate) [&level=N] (pinned level index)
//        [&behind=SECONDS] (liveMaxLatencyDuration: further behind, jump to live)
//        [&catchup=1] (jump forward inside the buffer when behind the target).
// Tests read window.hlsWatch.snapshot() and window.hlsWatch.g2g.
// Viewer counts: every playlist request carries this page load's `sid`, and the page also
// sends it as a heartbeat every 20 s (counted behind a CDN that never forwards each player).

// hls.js is served from web/node_modules (package.json pins it); the server serves web/ as is.
import Hls from '../node_modules/hls.js/dist/hls.mjs';
import { decodeClockCode } from './clockcode.js';
import { hlsConfig, dateAt, StallCounter, newSessionId, sidLoaderConfig } from './hls-meter.js';
import { formatBps } from './stats.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const video = $('video');
$('stream').value = params.get('stream') || 'test';

const numberParam = (name) => (params.has(name) ? Number(params.get(name)) : undefined);
const overrides = { liveSyncDuration: numberParam('sync'), maxLiveSyncPlaybackRate: numberParam('rate') };

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
window.hlsWatch = { state: 'idle', error: null, g2g, snapshot, hls: null, errors: [], catchUps: 0 };

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
  const src = `/hls/${encodeURIComponent(id)}/master.m3u8`;
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
  const beat = () => fetch(`/api/v1/streams/${encodeURIComponent(id)}/heartbeat`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sid }),
  }).catch(() => {});
  beat();
  heartbeat = setInterval(beat, HEARTBEAT_MS);
  window.hlsWatch.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    fillLevels(data.levels);
    const pin = numberParam('level');
    if (pin !== undefined && pin >= 0 && pin < data.levels.length) hls.currentLevel = pin;
  });
  hls.on(Hls.Events.FRAG_CHANGED, (_, data) => { playingFrag = data.frag; });
  // How old the newest media is when its playlist arrives: the source's and the packager's
  // share of the latency (capture, encode, part cut, publish), before the player's own.
  hls.on(Hls.Events.LEVEL_UPDATED, (_, { details }) => {
    // hls.js only speeds up when it is less than one target duration past its target and
    // has a second of buffer, and never jumps back to live unless told how far is too far:
    // a player that fell seconds behind (a stalled source that then catches up in a burst)
    // would stay there. Too far: two target durations past the target, unless ?behind= says.
    // Not less: stalls raise the target by up to one target duration, and a limit at or below
    // the raised target makes hls.js seek again and again.
    if (hls.config.liveMaxLatencyDuration === undefined) {
      const target = overrides.liveSyncDuration ?? (details.partHoldBack || details.holdBack);
      hls.config.liveMaxLatencyDuration = numberParam('behind') ?? target + 2 * details.targetduration;
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
    stalls.event(type, Date.now());
    if (hls) setState(type === 'playing' ? 'playing' : 'buffering');
  });
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
    const stamp = decodeClockCode(ctx.getImageData(0, 0, w, h));
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

/** Everything the page shows, as one object (the test scripts sample it every second). */
function snapshot() {
  const now = Date.now();
  const quality = video.getVideoPlaybackQuality?.();
  let bufferedS = 0;
  for (let i = 0; i < video.buffered.length; i++) {
    if (video.buffered.start(i) <= video.currentTime && video.currentTime <= video.buffered.end(i)) {
      bufferedS = video.buffered.end(i) - video.currentTime;
    }
  }
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

// hls.js plays faster than 1x only with more than 1 s of buffer, which a 0.6 s target never
// has, so a player that started (or fell) further back than its target stays there. With
// ?catchup=1 the page jumps forward inside the buffer instead, at most every 10 s. Off by
// default: the jump lands mid-GOP, the decoder restarts from the keyframe before it, and on a
// busy 2-core machine each jump stalled playback for 2.4-3.3 s (docs/benchmarks.md).
const CATCH_UP_AFTER_S = 0.3;
let lastCatchUp = 0;
function catchUp(now) {
  if (params.get('catchup') !== '1' || !hls || stalls.state !== 'playing') return;
  if (now - stalls.firstPlayingAt < 2000 || now - lastCatchUp < 10_000) return;
  const target = hls.targetLatency;
  const position = hls.liveSyncPosition;
  if (target === null || position === null || !(hls.latency > target + CATCH_UP_AFTER_S)) return;
  for (let i = 0; i < video.buffered.length; i++) {
    if (video.buffered.start(i) <= position && position + 0.1 <= video.buffered.end(i) && position > video.currentTime) {
      lastCatchUp = now;
      window.hlsWatch.catchUps += 1;
      video.currentTime = position;
      return;
    }
  }
}

const fmtS = (s) => (s === null ? '-' : `${s.toFixed(2)} s`);
const fmtMs = (ms) => (ms === null ? '-' : `${Math.round(ms)} ms`);

setInterval(() => {
  if (!hls) return;
  const s = snapshot();
  catchUp(s.at);
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
