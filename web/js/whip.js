// WHIP publisher (RFC 9725): sends a MediaStream to a Fanout room, with simulcast, and keeps it
// there through network changes and server restarts.
//
//   const whip = new WhipClient();
//   whip.addEventListener('state', (e) => console.log(e.detail));
//   await whip.publish('/whip/abc', streamKey, mediaStream, { simulcast: true, videoCodec: 'vp8' });
//   ...
//   await whip.stop(); // DELETEs the resource: the stream ends (after the server's grace period)

import { SignaledSession, State } from './session.js';

export { State };

/**
 * The simulcast ladder the server's layer allocator knows, low to high (the order of the SDP
 * a=simulcast line). The rids are part of the server contract.
 */
export const SIMULCAST_LAYERS = Object.freeze([
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
]);

export class WhipClient extends SignaledSession {
  /**
   * Starts publishing; resolves when the server first receives media, rejects if it refuses the
   * key. `videoCodec` is 'vp8' or 'h264'.
   */
  publish(url, token, stream, { simulcast = true, videoCodec = 'vp8' } = {}) {
    this.stream = stream;
    this.options = { simulcast, videoCodec };
    return this.start(url, token);
  }

  buildPeerConnection(config) {
    const pc = new RTCPeerConnection(config);
    const { simulcast, videoCodec } = this.options;
    for (const track of this.stream.getAudioTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
    }
    for (const track of this.stream.getVideoTracks()) {
      const init = { direction: 'sendonly', streams: [this.stream] };
      if (simulcast) init.sendEncodings = SIMULCAST_LAYERS.map((layer) => ({ ...layer }));
      const transceiver = pc.addTransceiver(track, init);
      transceiver.setCodecPreferences(videoCodecPreferences(videoCodec));
    }
    return pc;
  }
}

/**
 * The codec list to offer for video: only the chosen codec (so the server cannot pick another)
 * plus RTX, which retransmissions need. For H.264 the variants an SFU can forward to every
 * browser come first: packetization-mode=1, constrained baseline (42e01f).
 */
export function videoCodecPreferences(name) {
  const mime = `video/${name}`.toLowerCase();
  const codecs = RTCRtpSender.getCapabilities('video')?.codecs ?? [];
  const chosen = codecs.filter((c) => c.mimeType.toLowerCase() === mime);
  if (chosen.length === 0) {
    throw Object.assign(new Error(`this browser cannot send ${name.toUpperCase()}`), { permanent: true });
  }
  const score = (c) => {
    const fmtp = c.sdpFmtpLine ?? '';
    return (fmtp.includes('packetization-mode=1') ? 2 : 0) + (fmtp.includes('profile-level-id=42e01f') ? 1 : 0);
  };
  chosen.sort((a, b) => score(b) - score(a));
  const rtx = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/rtx');
  return [...chosen, ...rtx];
}
