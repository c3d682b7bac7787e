// What the LL-HLS page measures, as pure functions and a small state machine, so Node tests
// them without a browser: the player's settings, the wall-clock time of the playing position
// from PROGRAM-DATE-TIME, and stalls counted from media element events.

/**
 * hls.js settings for low latency. Without `liveSyncDuration` hls.js aims at the playlist's
 * PART-HOLD-BACK (three parts, 0.6 s with Fanout's 200 ms parts) and speeds up to
 * `maxLiveSyncPlaybackRate` to get back there after a hiccup instead of seeking.
 * `overrides` (from the page's query) replace single values; NaN and undefined are ignored.
 */
export function hlsConfig(overrides = {}) {
  const config = {
    lowLatencyMode: true,
    backBufferLength: 4,
    maxLiveSyncPlaybackRate: 1.5,
    // Each stall moves the target back by this much (hls.js: 1 s), up to one target duration.
    // One part is enough to ride out a late part without giving up a second for the session.
    liveSyncOnStallIncrease: 0.2,
    // The first estimate picks the start level: 5 Mb/s starts at the top rung (2.5 Mb/s).
    abrEwmaDefaultEstimate: 5_000_000,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined || value === null || Number.isNaN(value)) continue;
    config[key] = value;
  }
  return config;
}

/**
 * Unix milliseconds of `currentTime` on the timeline of a fragment (or of a part: its
 * segment's date applies), or null when the fragment carries no PROGRAM-DATE-TIME.
 */
export function dateAt(frag, currentTime) {
  const segment = frag?.fragment ?? frag;
  const pdt = segment?.programDateTime;
  if (typeof pdt !== 'number' || !Number.isFinite(pdt) || typeof segment.start !== 'number') return null;
  return pdt + (currentTime - segment.start) * 1000;
}

/**
 * Counts stalls: a `waiting` event once playback has started. States: `idle` (before the first
 * `playing`), `playing`, `stalled` (between a `waiting` and the next `playing`). `stalledMs`
 * adds up the time spent stalled.
 */
export class StallCounter {
  constructor() {
    this.state = 'idle';
    this.stalls = 0;
    this.stalledMs = 0;
    this.firstPlayingAt = null;
    this.stalledSince = null;
  }

  /** Feeds one media event (`playing`, `waiting`) seen at `now` (ms). */
  event(type, now) {
    if (type === 'playing') {
      if (this.state === 'idle') this.firstPlayingAt = now;
      if (this.state === 'stalled') this.stalledMs += now - this.stalledSince;
      this.state = 'playing';
      this.stalledSince = null;
    } else if (type === 'waiting' && this.state === 'playing') {
      this.state = 'stalled';
      this.stalls += 1;
      this.stalledSince = now;
    }
  }

  /** Time stalled so far, including a stall still going on at `now`. */
  stalledMsAt(now) {
    return this.stalledMs + (this.state === 'stalled' ? now - this.stalledSince : 0);
  }
}

/**
 * A random id for this page load (viewer counts): the player's playlist requests carry it as
 * `?sid=`, and the page sends it in heartbeats, so the server counts this player once.
 */
export function newSessionId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * `url` with `sid` when it names a playlist (`.m3u8`); media parts and segments keep their
 * plain URLs, so every player shares them in caches.
 */
export function withSid(url, sid) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (!parsed.pathname.endsWith('.m3u8')) return url;
  parsed.searchParams.set('sid', sid);
  return parsed.toString();
}

/**
 * hls.js settings that put `sid` on every playlist request, whichever loader hls.js uses
 * (XHR: reopen with the new URL before hls.js opens it; fetch: a new Request).
 */
export function sidLoaderConfig(sid) {
  return {
    xhrSetup: (xhr, url) => {
      const target = withSid(url, sid);
      if (target !== url) xhr.open('GET', target, true);
    },
    fetchSetup: (context, init) => new Request(withSid(context.url, sid), init),
  };
}
