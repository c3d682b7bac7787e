// Watch page: plays a stream over WHEP, shows what arrives, and lets the viewer pin a simulcast
// layer. Query: ?stream=ID[&token=JWT][&whep=URL][&layer=q|h|f][&autoplay=0].
// Tests read window.fanout.client (a WhepClient) and window.fanout.latencyMs.
//
// The page reports its latency (server to screen, see screenLatencyMs) to the server's
// heartbeat endpoint every 20 s, for the fanout_glass_to_glass_seconds{protocol="webrtc"}
// histogram; the WHEP session itself already counts this viewer.

import { WhepClient } from './whep.js';
import { streamUrls, postHeartbeat } from './api.js';
import {
  statsList, inbound, codecOf, RateMeter, formatBps, screenLatencyMs, currentRttS,
} from './stats.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$('stream').value = params.get('stream') ?? '';
$('token').value = params.get('token') ?? '';

const LATENCY_REPORT_MS = 20_000;
let client = null;
let lastReport = 0;
// Per presented frame: ms from the arrival of its last packet to its display.
const frameWaits = [];
watchFrames($('video'));
let pinned = params.get('layer') || null; // null: the server chooses
window.fanout = { client: null };
selectRadio(pinned);

async function play() {
  await stop();
  $('error').textContent = '';
  const id = $('stream').value.trim();
  if (!id) return;
  setRunning(true);
  const urls = params.get('whep') ? null : await streamUrls(id);
  client = new WhepClient({
    iceServers: urls?.iceServers ?? [],
    iceTransportPolicy: params.get('relay') === '1' ? 'relay' : 'all',
  });
  window.fanout = { client, latencyMs: null };
  lastReport = 0;
  frameWaits.length = 0;
  client.addEventListener('state', (e) => {
    $('state').textContent = e.detail;
    $('state').dataset.state = e.detail;
  });
  client.addEventListener('error', (e) => { $('error').textContent = e.detail?.message ?? String(e.detail); });
  client.addEventListener('connected', () => {
    $('error').textContent = '';
    $('video').srcObject = client.stream;
    // Every reconnection is a new server session, which starts in automatic mode.
    if (pinned) client.setLayer(pinned).catch(showError);
  });
  try {
    const whepUrl = params.get('whep') ?? urls.whepUrl;
    await client.play(whepUrl, $('token').value);
  } catch (err) {
    showError(err);
  }
}

async function stop() {
  await client?.stop();
  client = null;
  $('video').srcObject = null;
  setRunning(false);
}

function watchFrames(video) {
  if (!('requestVideoFrameCallback' in video)) return;
  const onFrame = (_, meta) => {
    if (typeof meta.receiveTime === 'number') {
      frameWaits.push(meta.expectedDisplayTime - meta.receiveTime);
      if (frameWaits.length > 60) frameWaits.shift();
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

function setRunning(running) {
  $('play').disabled = running;
  $('stop').disabled = !running;
}

function showError(err) {
  $('error').textContent = err.message;
}

function selectRadio(rid) {
  document.querySelector(`input[name=layer][value="${rid ?? ''}"]`).checked = true;
}

for (const radio of document.querySelectorAll('input[name=layer]')) {
  radio.addEventListener('change', () => {
    pinned = radio.value || null;
    if (client?.state === 'connected') client.setLayer(pinned).catch(showError);
  });
}

const meter = new RateMeter();
setInterval(async () => {
  const stats = await statsList(client?.pc);
  const video = inbound(stats, 'video');
  const audio = inbound(stats, 'audio');
  if (video) {
    $('resolution').textContent = video.frameWidth ? `${video.frameWidth}×${video.frameHeight}` : '-';
    $('fps').textContent = Math.round(video.framesPerSecond ?? 0);
    $('video-bitrate').textContent = formatBps(meter.bps(video, video.bytesReceived));
    $('codec').textContent = codecOf(stats, video);
    $('frames').textContent = `${video.framesDecoded ?? 0} / ${video.framesDropped ?? 0}`;
    $('lost').textContent = video.packetsLost ?? 0;
    const emitted = video.jitterBufferEmittedCount;
    $('jitter').textContent = emitted ? `${Math.round((video.jitterBufferDelay / emitted) * 1000)} ms` : '-';
  }
  const latency = screenLatencyMs(frameWaits, currentRttS(stats));
  $('latency').textContent = latency === null ? '-' : `${Math.round(latency)} ms`;
  if (window.fanout) window.fanout.latencyMs = latency;
  if (latency !== null && client?.state === 'connected' && Date.now() - lastReport >= LATENCY_REPORT_MS) {
    lastReport = Date.now();
    postHeartbeat($('stream').value.trim(), { latencyMs: Math.round(latency), protocol: 'webrtc' });
  }
  if (audio) $('audio-bitrate').textContent = formatBps(meter.bps(audio, audio.bytesReceived));
  if (client?.state === 'connected') {
    try {
      const l = await client.getLayer();
      const switching = l.target && l.target !== l.rid ? ` → ${l.target}` : '';
      const estimate = l.estimateBps ? `, estimate ${formatBps(l.estimateBps)}` : '';
      $('layer').textContent = `${l.rid ?? '-'}${switching} (${l.mode}; available ${(l.available ?? []).join(' ') || 'none'}${estimate})`;
    } catch (err) {
      $('layer').textContent = `unavailable (${err.message})`;
    }
  }
}, 1000);

$('form').addEventListener('submit', (e) => { e.preventDefault(); play(); });
$('stop').addEventListener('click', stop);
$('unmute').addEventListener('click', () => {
  $('video').muted = !$('video').muted;
  $('unmute').textContent = $('video').muted ? 'Unmute' : 'Mute';
});
addEventListener('pagehide', () => client?.stop());
if ($('stream').value && params.get('autoplay') !== '0') play();
