// What the LL-HLS page measures, as pure functions and a small state machine, so Node tests
// them without a browser: the player's settings, the wall-clock time of the playing position
// from PROGRAM-DATE-TIME, and stalls counted from media element events.

/**
 * hls.js settings for low latency. Without `liveSyncDuration` hls.js aims at the playlist's
 * PART-HOLD-BACK (three parts, 0.6 s with Fanout's 200 ms parts). Its own speed-up is off
 * (`maxLiveSyncPlaybackRate: 1`): it only acts with more than 1 s of buffer, which a 0.6 s
 * target never has, so players settled near 1.15 s; the page runs [`catchUpRate`] instead.
 * `overrides` (from the page's query) replace single values; NaN and undefined are ignored.
 */
export function hlsConfig(overrides = {}) {
  const config = {
    lowLatencyMode: true,
    backBufferLength: 4,
    maxLiveSyncPlaybackRate: 1,
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

/** Least media ahead of the playhead for speeding up: about two parts. */
export const CATCH_UP_MIN_AHEAD_S = 0.35;
/**
 * Latency above the target that is left alone. hls.js's own dead band is 0.05 s, but in
 * Chromium its part loading cannot keep a 0.6 s target: pushed below about 0.9 s the buffer
 * ran dry and playback stalled twice in a 60 s run (while at 1.1 s it never did). So this
 * brings a player back after it fell behind (a stall, a slow start) rather than chasing the
 * target.
 */
export const CATCH_UP_DEADBAND_S = 0.4;

/**
 * The playback rate that brings a player back to its target latency: 1 inside the dead band
 * or with under [`CATCH_UP_MIN_AHEAD_S`] buffered ahead (speeding up then would stall), else
 * 1 + 0.3 per second behind the target, in 0.05 steps (few rate changes, no audible wobble), at most
 * `maxRate`. Playing faster never restarts the decoder, unlike a seek inside the buffer, which
 * lands mid-GOP and stalled for 2-3 s on a busy machine.
 */
export function catchUpRate(latency, target, bufferAhead, maxRate = 1.15) {
  if (![latency, target, bufferAhead].every(Number.isFinite) || !(maxRate > 1)) return 1;
  const excess = latency - target;
  if (excess <= CATCH_UP_DEADBAND_S || bufferAhead < CATCH_UP_MIN_AHEAD_S) return 1;
  const rate = Math.round((1 + 0.3 * excess) * 20) / 20;
  return Math.min(maxRate, Math.max(1.05, rate));
}

/**
 * How far behind live (seconds) hls.js should jump back instead of speeding up, for a target
 * latency and target duration: above the highest target stalls can raise (target + TD), below
 * the top of the speed-up range (2 x target + TD), so that no latency is left uncorrected.
 */
export function liveLimit(target, targetDuration) {
  return target + targetDuration + target / 2;
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
