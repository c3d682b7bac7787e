// Small helpers over RTCPeerConnection.getStats() for the pages and the test harness.

/** All stats objects of a peer connection as a plain array. */
export async function statsList(pc) {
  return pc ? [...(await pc.getStats()).values()] : [];
}

/** Turns cumulative byte counters into bits per second between two getStats() calls. */
export class RateMeter {
  #last = new Map(); // stats id -> {bytes, timestamp}

  bps(stat, bytes) {
    const prev = this.#last.get(stat.id);
    this.#last.set(stat.id, { bytes, timestamp: stat.timestamp });
    if (!prev || stat.timestamp <= prev.timestamp) return 0;
    return Math.max(0, ((bytes - prev.bytes) * 8 * 1000) / (stat.timestamp - prev.timestamp));
  }
}

/** One row per outgoing video encoding (simulcast layer), low to high. */
export function outboundVideoLayers(stats, meter) {
  return stats
    .filter((s) => s.type === 'outbound-rtp' && s.kind === 'video')
    .map((s) => ({
      rid: s.rid ?? '-',
      width: s.frameWidth ?? 0,
      height: s.frameHeight ?? 0,
      fps: s.framesPerSecond ?? 0,
      bps: meter.bps(s, s.bytesSent ?? 0),
      active: s.active !== false,
      limitation: s.qualityLimitationReason ?? 'none',
      encoder: s.encoderImplementation ?? '',
    }))
    .sort((a, b) => a.width - b.width);
}

/** The inbound-rtp stats of one kind ('audio' or 'video'), or null before any arrived. */
export function inbound(stats, kind) {
  return stats.find((s) => s.type === 'inbound-rtp' && s.kind === kind) ?? null;
}

/** The codec name ('VP8', 'H264', 'opus') a stats object refers to. */
export function codecOf(stats, rtp) {
  const codec = rtp && stats.find((s) => s.id === rtp.codecId);
  return codec ? codec.mimeType.split('/')[1] : '';
}

/**
 * Server-to-screen latency of a WebRTC viewer, in ms: the network's one-way share (half the
 * round trip of the candidate pair in use) plus how long the frames on screen waited between
 * the arrival of their last packet and their display (jitter buffer, decode, render; the
 * median of `waitsMs`, from requestVideoFrameCallback's `expectedDisplayTime - receiveTime`).
 * null while either part is unknown. Chromium maps media time to the sender's clock
 * (`estimatedPlayoutTimestamp`, `captureTime`) only with a receiver-side RTT estimate, which a
 * receive-only peer does not have, so the latency is built from the parts it does report. It
 * leaves out the publisher's capture, encode and uplink, and the server's own forwarding delay
 * (`fanout_sfu_forward_delay_seconds`).
 */
export function screenLatencyMs(waitsMs, rttS) {
  if (!waitsMs?.length || typeof rttS !== 'number' || !(rttS >= 0)) return null;
  const sorted = [...waitsMs].sort((a, b) => a - b);
  const wait = sorted[Math.floor(sorted.length / 2)];
  return wait >= 0 ? wait + (rttS * 1000) / 2 : null;
}

/** The round trip (s) of the candidate pair in use, or null. */
export function currentRttS(stats) {
  const transport = stats.find((s) => s.type === 'transport');
  const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
  return typeof pair?.currentRoundTripTime === 'number' ? pair.currentRoundTripTime : null;
}

export function formatBps(bps) {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  return `${Math.round(bps / 1e3)} kbit/s`;
}
