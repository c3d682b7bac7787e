// Baseline for the glass-to-glass benchmark: publisher and viewer in one page, joined directly.
// Sends one encoding shaped like the chosen simulcast layer (scale and bitrate cap), so the
// numbers compare with a viewer of that layer through the server. Exposes window.g2g like
// g2g-watch.html.

import { ClockSource } from './clock-source.js';
import { G2gMeter } from './g2g-meter.js';
import { SIMULCAST_LAYERS, videoCodecPreferences } from '../js/whip.js';
import { statsList, inbound } from '../js/stats.js';
import { showLatency } from './show-latency.js';

const params = new URLSearchParams(location.search);
const num = (name, fallback) => Number(params.get(name) ?? fallback);
const video = document.getElementById('video');
const g2g = { state: 'connecting', error: null, samples: [], framesDecoded: 0, layer: null, timings: null };
window.g2g = g2g;
const setState = (state) => { g2g.state = document.getElementById('state').textContent = state; };

try {
  const layer = SIMULCAST_LAYERS.find((l) => l.rid === (params.get('layer') ?? 'f'));
  g2g.layer = { mode: 'pinned', rid: layer.rid, available: [layer.rid] };
  const source = new ClockSource({
    width: num('width', 1280),
    height: num('height', 720),
    fps: num('fps', 30),
    audio: params.get('audio') !== '0',
  });
  document.body.append(source.canvas);
  const stream = source.start();

  const t0 = performance.now();
  const sender = new RTCPeerConnection();
  const receiver = new RTCPeerConnection();
  // Direct trickle between the two: nothing travels through a server.
  sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
  receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
  for (const track of stream.getAudioTracks()) sender.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  const [track] = stream.getVideoTracks();
  const { rid, ...encoding } = layer;
  const tx = sender.addTransceiver(track, { direction: 'sendonly', streams: [stream], sendEncodings: [encoding] });
  tx.setCodecPreferences(videoCodecPreferences(params.get('codec') ?? 'vp8'));
  const received = new MediaStream();
  receiver.ontrack = (e) => received.addTrack(e.track);

  await sender.setLocalDescription(await sender.createOffer());
  await receiver.setRemoteDescription(sender.localDescription);
  await receiver.setLocalDescription(await receiver.createAnswer());
  await sender.setRemoteDescription(receiver.localDescription);
  video.srcObject = received;
  new G2gMeter(video, g2g).start(t0);
  setState('connected');
  window.fanout = { sender, receiver, source };

  setInterval(async () => {
    const rtp = inbound(await statsList(receiver), 'video');
    if (rtp) g2g.framesDecoded = rtp.framesDecoded ?? 0;
  }, 500);
  showLatency(g2g, document.getElementById('latency'));
} catch (err) {
  setState('failed');
  g2g.error = err.message;
  document.getElementById('error').textContent = err.message;
}
