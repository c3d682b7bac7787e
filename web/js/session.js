// The part WHIP (RFC 9725) and WHEP share: one HTTP exchange of a complete SDP offer for an
// answer, a resource URL to DELETE, and a loop that rebuilds the whole session when the
// connection or the server goes away. WhipClient and WhepClient only say how to build the
// RTCPeerConnection.
//
// Non-trickle on purpose: we wait for ICE gathering to finish and send every candidate in the
// offer. On the networks this server targets (loopback, a LAN, a public SFU with TURN) that costs
// a few milliseconds and saves the PATCH round trips and their failure modes.

/** The life of a session, in the order it usually goes. */
export const State = Object.freeze({
  Idle: 'idle',
  Connecting: 'connecting', // building the offer, POSTing it, waiting for ICE/DTLS
  Connected: 'connected',
  Reconnecting: 'reconnecting', // waiting out a backoff before the next attempt
  Stopped: 'stopped', // stop() was called
  Failed: 'failed', // retrying cannot help: the server refused the offer (see HttpError), no codec
});

/**
 * An HTTP answer that was not the 201 we needed. Any error with `permanent: true` (this one for
 * some statuses) stops the retry loop.
 */
export class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}${body ? `: ${reason(body)}` : ''}`);
    this.status = status;
    // 503 (workers saturated) and 5xx in general are worth another try; these are not.
    this.permanent = [400, 401, 403, 404, 413, 415].includes(status);
  }
}

/** The server's short reason: `{"error": "..."}` by contract (docs/api.md), else the text. */
function reason(body) {
  try {
    const { error } = JSON.parse(body);
    if (typeof error === 'string') return error;
  } catch {
    // not JSON: a proxy's page, say
  }
  return body.trim().slice(0, 200);
}

const GATHER_TIMEOUT_MS = 2000; // past this we send the candidates we have
// Without STUN/TURN servers only host candidates come, the UDP ones together at once; Chromium's
// TCP host candidates trail them by ~120 ms and are useless to Fanout's UDP-only media, so we
// stop waiting this long after the first UDP candidate.
const HOST_SETTLE_MS = 20;
const CONNECT_TIMEOUT_MS = 10000; // answer received but ICE/DTLS never completes
const DISCONNECT_GRACE_MS = 2500; // 'disconnected' often heals by itself; 'failed' never does
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;

/**
 * Base class: subclasses implement `buildPeerConnection(config)` and may widen `retryable(err)`.
 * Events: 'state' (detail: the new State), 'error' (detail: the Error that ended an attempt),
 * 'connected' (each time a session is up; `pc` is then the live RTCPeerConnection).
 */
export class SignaledSession extends EventTarget {
  #state = State.Idle;
  #abort = null; // aborts sleeps and fetches when stop() is called
  #iceServers = [];
  #iceTransportPolicy = 'all';

  /** `iceTransportPolicy: 'relay'` forces media through TURN (troubleshooting, tests). */
  constructor({ iceServers = [], iceTransportPolicy = 'all' } = {}) {
    super();
    this.#iceServers = iceServers;
    this.#iceTransportPolicy = iceTransportPolicy;
    this.pc = null;
    this.resourceUrl = null; // the Location of the current session, absolute
    this.etag = null;
    this.lastError = null;
    this.attempts = 0; // POSTs made since start(), for display and tests
    // Wall-clock milestones of the latest attempt, in performance.now() milliseconds.
    this.timings = {};
  }

  get state() {
    return this.#state;
  }

  /**
   * Runs until stop(): connect, watch the connection, rebuild it when it breaks. The returned
   * promise settles once: connected for the first time, or failed/stopped before that. Later
   * breaks and reconnections are reported through events only.
   */
  start(url, token) {
    if (this.#abort) throw new Error('already started');
    this.url = new URL(url, document.baseURI).href;
    this.token = token || null;
    this.attempts = 0;
    this.#abort = new AbortController();
    const first = new Promise((resolve, reject) => {
      const onState = (e) => {
        if (e.detail === State.Connected) resolve();
        else if (e.detail === State.Failed) reject(this.lastError);
        else if (e.detail === State.Stopped) reject(new Error('stopped'));
        else return;
        this.removeEventListener('state', onState);
      };
      this.addEventListener('state', onState);
    });
    this.#run(this.#abort.signal); // never throws: everything it meets is reported as an event
    return first;
  }

  async stop() {
    if (!this.#abort) return;
    this.#abort.abort();
    this.#abort = null;
    await this.#teardown();
    this.#setState(State.Stopped);
  }

  async #run(signal) {
    let failures = 0;
    while (!signal.aborted) {
      this.#setState(failures === 0 && this.attempts === 0 ? State.Connecting : State.Reconnecting);
      if (failures > 0) {
        // Exponential backoff with jitter, so a restarted server is not hit by every viewer at once.
        const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1));
        await sleep(base / 2 + Math.random() * base / 2, signal);
        if (signal.aborted) return;
        this.#setState(State.Connecting);
      }
      let broken;
      try {
        const pc = await this.#connect(signal);
        this.#setState(State.Connected);
        this.dispatchEvent(new Event('connected'));
        failures = 0;
        broken = await connectionBroken(pc, signal);
      } catch (err) {
        if (signal.aborted) {
          // stop() may have torn down before the POST's answer named a resource: free it too.
          await this.#teardown();
          return;
        }
        broken = err;
      }
      if (signal.aborted) return;
      this.lastError = broken;
      this.dispatchEvent(new CustomEvent('error', { detail: broken }));
      await this.#teardown();
      if (!this.retryable(broken)) {
        this.#abort = null;
        this.#setState(State.Failed);
        return;
      }
      failures += 1;
    }
  }

  async #connect(signal) {
    this.attempts += 1;
    this.timings = { start: performance.now() };
    const pc = this.buildPeerConnection({
      iceServers: this.#iceServers,
      iceTransportPolicy: this.#iceTransportPolicy,
      bundlePolicy: 'max-bundle',
    });
    this.pc = pc;
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, signal, this.#iceServers.length === 0);
    this.timings.post = performance.now();
    const answer = await this.#post(pc.localDescription.sdp, signal);
    this.timings.answer = performance.now();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await connected(pc, signal);
    this.timings.connected = performance.now();
    return pc;
  }

  async #post(offer, signal) {
    const headers = { 'Content-Type': 'application/sdp' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const res = await fetch(this.url, { method: 'POST', headers, body: offer, signal });
    const body = await res.text();
    if (res.status !== 201 && res.status !== 200) throw new HttpError(res.status, body);
    const location = res.headers.get('Location');
    if (!location) throw new Error('the server answered without a Location header');
    this.resourceUrl = new URL(location, this.url).href;
    this.etag = res.headers.get('ETag');
    // TURN servers offered by the server apply from the next attempt on: this one has already
    // gathered its candidates.
    const turn = parseIceServerLinks(res.headers.get('Link'));
    if (turn.length) this.#iceServers = turn;
    return body;
  }

  /** Ends the current attempt: the server learns at once (DELETE), the browser frees the PC. */
  async #teardown() {
    const pc = this.pc;
    const resource = this.resourceUrl;
    this.pc = null;
    this.resourceUrl = null;
    pc?.close();
    if (resource) {
      const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
      // keepalive lets the DELETE leave even when it is sent from a closing page.
      await fetch(resource, { method: 'DELETE', headers, keepalive: true }).catch(() => {});
    }
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }

  buildPeerConnection() {
    throw new Error('subclass must implement buildPeerConnection');
  }

  /** Whether the loop should try again after this error; subclasses may widen it. */
  retryable(err) {
    return !err?.permanent;
  }
}

/** Calls `fn` when `signal` aborts; returns the function that unregisters it. */
function onAbort(signal, fn) {
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); forget(); resolve(); };
    const timer = setTimeout(done, ms);
    const forget = onAbort(signal, done);
  });
}

/** Resolves when the offer holds every candidate worth sending (see HOST_SETTLE_MS). */
function gatheringComplete(pc, signal, hostOnly) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    let timer = setTimeout(done, GATHER_TIMEOUT_MS);
    const forget = onAbort(signal, done);
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const candidate = (e) => {
      if (hostOnly && e.candidate?.protocol === 'udp') {
        clearTimeout(timer);
        timer = setTimeout(done, HOST_SETTLE_MS);
        pc.removeEventListener('icecandidate', candidate);
      }
    };
    pc.addEventListener('icegatheringstatechange', check);
    pc.addEventListener('icecandidate', candidate);
    function done() {
      clearTimeout(timer);
      forget();
      pc.removeEventListener('icegatheringstatechange', check);
      pc.removeEventListener('icecandidate', candidate);
      resolve();
    }
  });
}

/** Resolves when ICE and DTLS are up; rejects on failure or after CONNECT_TIMEOUT_MS. */
function connected(pc, signal) {
  return new Promise((resolve, reject) => {
    const finish = (err) => {
      clearTimeout(timer);
      forget();
      pc.removeEventListener('connectionstatechange', check);
      err ? reject(err) : resolve();
    };
    const check = () => {
      if (pc.connectionState === 'connected') finish();
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
        finish(new Error(`connection ${pc.connectionState} before it was established`));
      }
    };
    const timer = setTimeout(() => finish(new Error('connection timed out')), CONNECT_TIMEOUT_MS);
    const forget = onAbort(signal, () => finish(new Error('stopped')));
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

/** Resolves with an Error once an established connection is lost for good. */
function connectionBroken(pc, signal) {
  return new Promise((resolve) => {
    let grace = null;
    const finish = (err) => {
      clearTimeout(grace);
      forget();
      pc.removeEventListener('connectionstatechange', check);
      resolve(err);
    };
    const check = () => {
      const s = pc.connectionState;
      if (s === 'failed' || s === 'closed') finish(new Error(`connection ${s}`));
      else if (s === 'disconnected' && grace === null) {
        grace = setTimeout(() => finish(new Error('connection disconnected')), DISCONNECT_GRACE_MS);
      } else if (s === 'connected') {
        clearTimeout(grace);
        grace = null;
      }
    };
    const forget = onAbort(signal, () => finish(new Error('stopped')));
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

/**
 * Parses `Link: <turn:host:3478?transport=udp>; rel="ice-server"; username="u";
 * credential="p"` (RFC 9725 section 4.6) into RTCIceServer objects.
 */
export function parseIceServerLinks(header) {
  if (!header) return [];
  const servers = [];
  // Split on commas that start a new link, not the ones inside a URL's query.
  for (const link of header.split(/,\s*(?=<)/)) {
    const m = /^\s*<([^>]+)>(.*)$/.exec(link);
    if (!m) continue;
    const params = {};
    for (const p of m[2].split(';')) {
      const kv = /^\s*([\w-]+)\s*=\s*"?([^"]*)"?\s*$/.exec(p);
      if (kv) params[kv[1].toLowerCase()] = kv[2];
    }
    if (params.rel !== 'ice-server') continue;
    const server = { urls: m[1] };
    if (params.username) server.username = params.username;
    if (params.credential) server.credential = params.credential;
    servers.push(server);
  }
  return servers;
}
