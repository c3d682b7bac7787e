// WHEP viewer: receives a Fanout room's audio and video, rebuilds the session when it breaks,
// and drives the server's simulcast layer choice for this viewer.
//
//   const whep = new WhepClient();
//   whep.addEventListener('connected', () => { video.srcObject = whep.stream; });
//   await whep.play('/whep/abc');          // or play(url, viewerJwt) for a private stream
//   await whep.setLayer('q');              // pin the 1/4 layer; setLayer(null) = automatic
//   const { mode, rid, available, estimateBps } = await whep.getLayer();

import { SignaledSession, State, HttpError } from './session.js';

export { State };

export class WhepClient extends SignaledSession {
  /** Resolves when the first connection is up; `token` is a viewer JWT for private streams. */
  play(url, token) {
    return this.start(url, token);
  }

  /** A viewer may open the page before the publisher is live: keep asking. */
  retryable(err) {
    return err?.status === 404 || super.retryable(err);
  }

  buildPeerConnection(config) {
    const pc = new RTCPeerConnection(config);
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    // A stream of our own: the answer may carry no msid, and each attempt needs a fresh one so
    // that a <video> given the new stream restarts cleanly.
    const stream = new MediaStream();
    pc.addEventListener('track', (e) => stream.addTrack(e.track));
    this.stream = stream;
    return pc;
  }

  /** The server's layer state for this viewer: {mode, rid, available, estimateBps}. */
  async getLayer() {
    const res = await fetch(this.#layerUrl(), { headers: this.#auth() });
    if (!res.ok) throw new HttpError(res.status, await res.text());
    return res.json();
  }

  /** Pins a simulcast layer ('q', 'h', 'f'), or gives the choice back to the server (null). */
  async setLayer(rid) {
    const res = await fetch(this.#layerUrl(), {
      method: 'POST',
      headers: { ...this.#auth(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ rid }),
    });
    if (!res.ok) throw new HttpError(res.status, await res.text());
  }

  #layerUrl() {
    if (!this.resourceUrl) throw new Error('not connected');
    return `${this.resourceUrl}/layer`;
  }

  #auth() {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }
}
