// The LL-HLS page's measurements without a browser: settings, PROGRAM-DATE-TIME mapping, stalls.

import test from 'node:test';
import assert from 'node:assert/strict';
import { hlsConfig, dateAt, liveLimit, catchUpRate, StallCounter } from '../js/hls-meter.js';

test('low-latency settings, with overrides that ignore missing values', () => {
  const base = hlsConfig();
  assert.equal(base.lowLatencyMode, true);
  assert.equal('liveSyncDuration' in base, false, 'PART-HOLD-BACK decides unless asked');
  const tuned = hlsConfig({ liveSyncDuration: 0.4, maxLiveSyncPlaybackRate: undefined, startLevel: NaN });
  assert.equal(tuned.liveSyncDuration, 0.4);
  assert.equal(tuned.maxLiveSyncPlaybackRate, base.maxLiveSyncPlaybackRate);
  assert.equal('startLevel' in tuned, false);
});

test('the date of a position is the segment date plus the offset into it', () => {
  const frag = { start: 10, programDateTime: 1_700_000_000_000 };
  assert.equal(dateAt(frag, 10), 1_700_000_000_000);
  assert.equal(dateAt(frag, 11.5), 1_700_000_001_500);
  // A part carries its segment as `fragment`.
  assert.equal(dateAt({ start: 10.4, fragment: frag }, 10.6), 1_700_000_000_600);
  assert.equal(dateAt({ start: 0, programDateTime: null }, 1), null);
  assert.equal(dateAt(null, 1), null);
});

test('stalls count waiting after the first playing, and the time spent in them', () => {
  const s = new StallCounter();
  s.event('waiting', 0); // start-up buffering is not a stall
  assert.equal(s.stalls, 0);
  s.event('playing', 100);
  assert.equal(s.firstPlayingAt, 100);
  s.event('waiting', 1000);
  s.event('waiting', 1100); // one stall, however many events
  assert.equal(s.stalls, 1);
  assert.equal(s.stalledMsAt(1300), 300);
  s.event('playing', 1500);
  assert.equal(s.stalledMsAt(5000), 500);
  s.event('waiting', 6000);
  s.event('playing', 6100);
  assert.equal(s.stalls, 2);
  assert.equal(s.stalledMs, 600);
});

test('every latency behind the target is either sped up or jumped back from', () => {
  // hls.js 1.x: speeds up while latency - target < min(limit, target + TD); seeks to
  // live - target when latency > limit. Stalls raise the target by up to one TD.
  for (const [base, td] of [[0.6, 2], [1, 4], [3, 6], [0.3, 1]]) {
    const limit = liveLimit(base, td);
    for (let target = base; target <= base + td + 1e-9; target += 0.1) {
      assert.ok(target < limit, `a seek to live lands under the limit (target ${target}, TD ${td})`);
      for (let latency = target + 0.1; latency < 20; latency += 0.05) {
        const speeds = latency - target < Math.min(limit, target + td);
        const seeks = latency > limit;
        assert.ok(speeds || seeks, `latency ${latency.toFixed(2)} with target ${target.toFixed(1)}, TD ${td} stays`);
      }
    }
  }
});

test('the catch-up rate speeds up only behind the target and with media ahead', () => {
  assert.equal(catchUpRate(0.95, 0.6, 1.0), 1, 'inside the dead band');
  assert.equal(catchUpRate(1.2, 0.6, 0.2), 1, 'too little buffered: speeding up would stall');
  assert.equal(catchUpRate(1.1, 0.6, 0.9), 1.15, 'behind: 1 + 0.3 x 0.5');
  assert.equal(catchUpRate(1.05, 0.9, 1.0), 1, 'the dead band is above the target it is given');
  assert.equal(catchUpRate(4.1, 0.8, 3.5), 1.15, 'capped');
  assert.equal(catchUpRate(4.1, 0.8, 3.5, 1.5), 1.5);
  assert.equal(catchUpRate(4.1, 0.8, 3.5, 1), 1, 'a cap of 1 turns it off');
  assert.equal(catchUpRate(NaN, 0.6, 1), 1);
  assert.equal(catchUpRate(1, null, 1), 1);
  // Played forward in simulated time: a player 3 s behind reaches the band and stops there.
  let latency = 3.6;
  let ahead = 3.5;
  for (let t = 0; t < 30; t += 0.25) {
    const rate = catchUpRate(latency, 0.6, ahead);
    latency -= (rate - 1) * 0.25;
    ahead -= (rate - 1) * 0.25;
  }
  assert.ok(latency <= 0.6 + 0.4 + 1e-9 && latency > 0.9, `settled at ${latency}`);
});

test('playlist URLs carry the session id, media URLs stay shared', async () => {
  const { withSid, newSessionId } = await import('../js/hls-meter.js');
  const sid = newSessionId();
  assert.match(sid, /^[0-9a-f]{24}$/);
  assert.notEqual(sid, newSessionId());
  assert.equal(
    withSid('http://h:8080/hls/s1/720p/live.m3u8?_HLS_msn=5&_HLS_part=1', sid),
    `http://h:8080/hls/s1/720p/live.m3u8?_HLS_msn=5&_HLS_part=1&sid=${sid}`,
  );
  assert.equal(withSid('http://h/hls/s1/master.m3u8', sid), `http://h/hls/s1/master.m3u8?sid=${sid}`);
  assert.equal(withSid('http://h/hls/s1/720p/p5.1.m4s', sid), 'http://h/hls/s1/720p/p5.1.m4s');
  assert.equal(withSid('not a url', sid), 'not a url');
});
