// Glass-to-glass publisher: the clock source over WHIP. Starts on load.
// Tests read window.g2gPublish = {state, error, framesDrawn}; window.fanout.client is the WhipClient.

import { ClockSource } from './clock-source.js';
import { WhipClient } from '../js/whip.js';
import { streamUrls } from '../js/api.js';

const params = new URLSearchParams(location.search);
const num = (name, fallback) => Number(params.get(name) ?? fallback);
const status = { state: 'idle', error: null, framesDrawn: 0 };
window.g2gPublish = status;

const source = new ClockSource({
  width: num('width', 1280),
  height: num('height', 720),
  fps: num('fps', 30),
  audio: params.get('audio') !== '0',
});
document.getElementById('preview').append(source.canvas);
const stream = source.start();
setInterval(() => { status.framesDrawn = source.framesDrawn; }, 250);

const client = new WhipClient();
window.fanout = { client, source };
client.addEventListener('state', (e) => {
  status.state = e.detail;
  document.getElementById('state').textContent = e.detail;
  document.getElementById('state').dataset.state = e.detail;
});
client.addEventListener('error', (e) => {
  status.error = e.detail?.message ?? String(e.detail);
  document.getElementById('error').textContent = status.error;
});

const id = params.get('stream');
const whipUrl = params.get('whip') ?? (await streamUrls(id)).whipUrl;
client
  .publish(whipUrl, params.get('key'), stream, {
    simulcast: params.get('simulcast') !== '0',
    videoCodec: params.get('codec') ?? 'vp8',
  })
  .catch((err) => { status.error = err.message; });
addEventListener('pagehide', () => client.stop());
