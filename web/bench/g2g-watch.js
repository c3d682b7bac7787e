// Glass-to-glass viewer over WHEP. Starts on load. With `code=clock` it reads the clock code
// of Fanout's test pattern (an RTMP/SRT push of fanout-push-test) instead of the bench
// publisher's barcode. Tests read window.g2g:
//   {state, error, samples: [latency ms], firstFrameMs, framesDecoded, framesPresented,
//    decodeFailures, width, height, layer, timings, jitterBuffer: {delayS, emitted} (sums)}
// firstFrameMs counts from the start of the WHEP attempt that succeeded (offer, POST, ICE,
// DTLS, first keyframe) to the first frame the <video> presents.

import { G2gMeter } from './g2g-meter.js';
import { decodeBarcode } from './barcode.js';
import { decodeClockCode } from '../js/clockcode.js';
import { WhepClient } from '../js/whep.js';
import { streamUrls } from '../js/api.js';
import { statsList, inbound } from '../js/stats.js';
import { showLatency } from './show-latency.js';

const params = new URLSearchParams(location.search);
const video = document.getElementById('video');
const g2g = { state: 'idle', error: null, samples: [], framesDecoded: 0, layer: null, timings: null };
window.g2g = g2g;
const meter = new G2gMeter(video, g2g, params.get('code') === 'clock' ? decodeClockCode : decodeBarcode);

const client = new WhepClient();
window.fanout = { client };
client.addEventListener('state', (e) => {
  g2g.state = e.detail;
  document.getElementById('state').textContent = e.detail;
  document.getElementById('state').dataset.state = e.detail;
});
client.addEventListener('error', (e) => {
  g2g.error = e.detail?.message ?? String(e.detail);
  document.getElementById('error').textContent = g2g.error;
});
let measuring = false;
client.addEventListener('connected', () => {
  video.srcObject = client.stream;
  const t = client.timings;
  const since = (at) => Math.round((at - t.start) * 10) / 10;
  g2g.timings = { postMs: since(t.post), answerMs: since(t.answer), connectedMs: since(t.connected) };
  // Measure the first session only: a reconnection's first frame is not a cold start.
  if (!measuring) meter.start(t.start);
  measuring = true;
  if (params.get('layer')) client.setLayer(params.get('layer')).catch((err) => { g2g.error = err.message; });
});

setInterval(async () => {
  const rtp = inbound(await statsList(client.pc), 'video');
  if (rtp) {
    g2g.framesDecoded = rtp.framesDecoded ?? 0;
    // Chromium's own share of the path: seconds frames waited in its jitter buffer, summed.
    g2g.jitterBuffer = { delayS: rtp.jitterBufferDelay ?? 0, emitted: rtp.jitterBufferEmittedCount ?? 0 };
  }
  if (client.state === 'connected') g2g.layer = await client.getLayer().catch(() => null);
}, 500);
showLatency(g2g, document.getElementById('latency'));

const id = params.get('stream');
const whepUrl = params.get('whep') ?? (await streamUrls(id)).whepUrl;
client.play(whepUrl, params.get('token')).catch((err) => { g2g.error = err.message; });
addEventListener('pagehide', () => client.stop());
