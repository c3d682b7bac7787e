// Publish page: camera and microphone to a stream over WHIP.
// Query: ?stream=ID&key=KEY[&whip=URL][&simulcast=0][&codec=h264|vp9|av1][&width=1280&height=720&fps=30]
//        [&audio=0][&autostart=1]. Tests read window.fanout.client (a WhipClient).

import { WhipClient } from './whip.js';
import { streamUrls } from './api.js';
import { statsList, outboundVideoLayers, RateMeter, formatBps } from './stats.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$('stream').value = params.get('stream') ?? '';
$('key').value = params.get('key') ?? '';
$('simulcast').checked = params.get('simulcast') !== '0';
$('codec').value = ['h264', 'vp9', 'av1'].includes(params.get('codec')) ? params.get('codec') : 'vp8';

let client = null;
let media = null;
window.fanout = { client: null, media: null };

async function start() {
  $('error').textContent = '';
  const id = $('stream').value.trim();
  if (!id) {
    $('error').textContent = 'enter a stream id';
    return;
  }
  setRunning(true);
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: params.get('audio') !== '0',
      video: {
        width: { ideal: Number(params.get('width') ?? 1280) },
        height: { ideal: Number(params.get('height') ?? 720) },
        frameRate: { ideal: Number(params.get('fps') ?? 30) },
      },
    });
    $('preview').srcObject = media;
    const urls = await streamUrls(id);
    const whipUrl = params.get('whip') ?? urls.whipUrl;
    const watch = new URL(`watch.html?stream=${encodeURIComponent(id)}`, location.href);
    $('watch-link').href = $('watch-link').textContent = watch.href;

    client = new WhipClient({
      iceServers: urls.iceServers,
      iceTransportPolicy: params.get('relay') === '1' ? 'relay' : 'all',
    });
    window.fanout = { client, media };
    client.addEventListener('state', (e) => showState(e.detail));
    client.addEventListener('error', (e) => { $('error').textContent = e.detail?.message ?? String(e.detail); });
    await client.publish(whipUrl, $('key').value, media, {
      simulcast: $('simulcast').checked,
      videoCodec: $('codec').value,
    });
    $('error').textContent = '';
  } catch (err) {
    $('error').textContent = err.message;
    if (client?.state !== 'connected') await stop();
  }
}

async function stop() {
  await client?.stop();
  media?.getTracks().forEach((t) => t.stop());
  media = null;
  setRunning(false);
}

function setRunning(running) {
  $('start').disabled = running;
  $('stop').disabled = !running;
  for (const id of ['stream', 'key', 'simulcast', 'codec']) $(id).disabled = running;
}

function showState(state) {
  $('state').textContent = state;
  $('state').dataset.state = state;
}

const meter = new RateMeter();
setInterval(async () => {
  const stats = await statsList(client?.pc);
  $('layers').replaceChildren(...outboundVideoLayers(stats, meter).map((l) => {
    const tr = document.createElement('tr');
    const cells = [l.rid, `${l.width}×${l.height}`, Math.round(l.fps), formatBps(l.bps), l.limitation, l.encoder];
    for (const text of cells) tr.insertCell().textContent = text;
    return tr;
  }));
  const audio = stats.find((s) => s.type === 'outbound-rtp' && s.kind === 'audio');
  $('audio').textContent = audio ? formatBps(meter.bps(audio, audio.bytesSent)) : '-';
}, 1000);

$('form').addEventListener('submit', (e) => { e.preventDefault(); start(); });
$('stop').addEventListener('click', stop);
// Tell the server now rather than letting the session time out.
addEventListener('pagehide', () => client?.stop());
if (params.get('autostart') === '1') start();
