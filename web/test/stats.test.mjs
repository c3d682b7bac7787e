// getStats() helpers of the watch page, on stats objects shaped like Chromium's.

import test from 'node:test';
import assert from 'node:assert/strict';
import { screenLatencyMs, currentRttS, RateMeter } from '../js/stats.js';

test('latency is half the round trip plus the median wait of the frames on screen', () => {
  assert.equal(screenLatencyMs([30, 10, 20, 500, 25], 0.004), 25 + 2);
  assert.equal(screenLatencyMs([40], 0), 40);
});

test('no latency while a part is unknown or makes no sense', () => {
  assert.equal(screenLatencyMs([], 0.01), null, 'no frame presented yet');
  assert.equal(screenLatencyMs([20], null), null, 'no round trip yet');
  assert.equal(screenLatencyMs([20], NaN), null);
  assert.equal(screenLatencyMs([-5, -3, -4], 0.01), null, 'displayed before received');
});

test('the round trip is the selected candidate pair\'s', () => {
  const stats = [
    { type: 'transport', id: 't', selectedCandidatePairId: 'p2' },
    { type: 'candidate-pair', id: 'p1', currentRoundTripTime: 0.5 },
    { type: 'candidate-pair', id: 'p2', currentRoundTripTime: 0.012 },
  ];
  assert.equal(currentRttS(stats), 0.012);
  assert.equal(currentRttS([{ type: 'transport', id: 't' }]), null);
});

test('bit rate between two readings of the same stats object', () => {
  const meter = new RateMeter();
  assert.equal(meter.bps({ id: 'v', timestamp: 1000 }, 0), 0, 'the first reading has nothing to compare');
  assert.equal(meter.bps({ id: 'v', timestamp: 2000 }, 125_000), 1_000_000);
});
