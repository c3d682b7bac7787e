#!/usr/bin/python3
"""A GStreamer webrtcbin peer for the end-to-end tests: a WHIP publisher or a WHEP viewer.

    webrtcbin_peer.py publish URL KEY   VP8 test pattern + Opus tone, WHIP, Bearer KEY
    webrtcbin_peer.py view URL          recvonly VP8 + Opus, WHEP, decodes both

webrtcbin keeps its defaults (its own RSA certificate, libnice's ICE and keepalives) except
the bundle policy: RFC 9725 has every m-section of a WHIP/WHEP offer in one BUNDLE group.
The offer is sent complete (no trickle) once gathering is done. One JSON object per line on
stdout: `answered` after the 201, a `state` line on every connection state change and a
`stats` line every second (a viewer's decoded video frames and audio buffers, a publisher's
sent ones). Runs until killed; SIGTERM sends the DELETE first.

Uses Debian's python3-gi (run it with /usr/bin/python3, not another interpreter).
"""

import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VP8_CAPS = "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
# Two channels: RFC 7587 names Opus "opus/48000/2" in every SDP, and servers refuse others.
OPUS_CAPS = (
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
    "encoding-params=(string)2"
)


def emit(obj):
    print(json.dumps(obj), flush=True)


def make(factory, **props):
    element = Gst.ElementFactory.make(factory)
    if element is None:
        raise RuntimeError(f"GStreamer element {factory} is missing")
    for name, value in props.items():
        element.set_property(name.replace("_", "-"), value)
    return element


def link_chain(pipeline, elements):
    for e in elements:
        pipeline.add(e)
    for a, b in zip(elements, elements[1:]):
        if not a.link(b):
            raise RuntimeError(f"cannot link {a.get_name()} to {b.get_name()}")


class Counter:
    """Buffers seen on a pad (called from streaming threads; read from the main loop)."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    def attach(self, pad):
        pad.add_probe(Gst.PadProbeType.BUFFER, self.probe)

    def probe(self, _pad, _info):
        with self.lock:
            self.count += 1
        return Gst.PadProbeReturn.OK

    def value(self):
        with self.lock:
            return self.count


class Peer:
    def __init__(self, mode, url, key):
        self.mode = mode
        self.url = url
        self.key = key
        self.resource = None
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.Pipeline.new(mode)
        self.webrtc = make("webrtcbin", bundle_policy=GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        self.video = Counter()
        self.audio = Counter()
        self.started = time.monotonic()
        self.offer_sent = False
        if mode == "publish":
            self.build_publisher()
        else:
            self.build_viewer()
        for prop in ("connection-state", "ice-connection-state", "ice-gathering-state"):
            self.webrtc.connect(f"notify::{prop}", self.on_state)
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    def build_publisher(self):
        video = [
            make("videotestsrc", is_live=True, pattern="ball"),
            make("capsfilter", caps=Gst.Caps.from_string("video/x-raw,width=640,height=360,framerate=30/1")),
            make("videoconvert"),
            make("vp8enc", deadline=1, target_bitrate=800_000, keyframe_max_dist=60),
            make("rtpvp8pay", pt=96),
            make("capsfilter", caps=Gst.Caps.from_string(VP8_CAPS)),
        ]
        audio = [
            make("audiotestsrc", is_live=True, wave="sine", volume=0.2),
            make("audioconvert"),
            make("audioresample"),
            make("opusenc"),
            make("rtpopuspay", pt=111),
            make("capsfilter", caps=Gst.Caps.from_string(OPUS_CAPS)),
        ]
        for chain, counter in ((video, self.video), (audio, self.audio)):
            link_chain(self.pipeline, chain)
            counter.attach(chain[-1].get_static_pad("src"))
            if not chain[-1].link(self.webrtc):
                raise RuntimeError("cannot link a payloader to webrtcbin")

    def build_viewer(self):
        recv = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
        for caps in (VP8_CAPS, OPUS_CAPS):
            self.webrtc.emit("add-transceiver", recv, Gst.Caps.from_string(caps))
        self.webrtc.connect("pad-added", self.on_incoming_pad)

    def on_incoming_pad(self, _webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_string("media")
        if media == "video":
            chain = [make("rtpvp8depay"), make("vp8dec"), make("fakesink", sync=False)]
            counter = self.video
        else:
            chain = [make("rtpopusdepay"), make("opusdec"), make("fakesink", sync=False)]
            counter = self.audio
        link_chain(self.pipeline, chain)
        counter.attach(chain[1].get_static_pad("src"))
        for e in chain:
            e.sync_state_with_parent()
        pad.link(chain[0].get_static_pad("sink"))
        emit({"event": "track", "media": media})

    def on_state(self, webrtc, pspec):
        value = webrtc.get_property(pspec.name)
        emit({"event": "state", "what": pspec.name, "value": value.value_nick})
        if pspec.name == "ice-gathering-state" and value == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(self.send_offer)

    def on_negotiation_needed(self, webrtc):
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        webrtc.emit("create-offer", None, promise)

    def on_offer_created(self, promise, _data):
        promise.wait()
        # Keep the reply while the offer is used: the offer belongs to it.
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        # Gathering may complete before or after this returns: look again until it has.
        GLib.timeout_add(100, self.offer_if_gathered)

    def offer_if_gathered(self):
        state = self.webrtc.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            self.send_offer()
            return False
        return True

    def send_offer(self):
        if self.offer_sent:
            return False
        self.offer_sent = True
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        headers = {"Content-Type": "application/sdp"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=sdp.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=20) as reply:
                answer = reply.read().decode()
                self.resource = urllib.parse.urljoin(self.url, reply.headers["Location"])
                status = reply.status
        except urllib.error.HTTPError as e:
            emit({"event": "error", "what": "offer refused", "status": e.code, "body": e.read().decode()})
            self.loop.quit()
            return False
        except (urllib.error.URLError, OSError) as e:
            emit({"event": "error", "what": f"offer not sent: {e}"})
            self.loop.quit()
            return False
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.webrtc.emit("set-remote-description", desc, Gst.Promise.new())
        emit({"event": "answered", "status": status, "offer": sdp, "answer": answer})
        return False

    def report(self):
        emit(
            {
                "event": "stats",
                "t": round(time.monotonic() - self.started, 1),
                "video": self.video.value(),
                "audio": self.audio.value(),
                "connection": self.webrtc.get_property("connection-state").value_nick,
                "ice": self.webrtc.get_property("ice-connection-state").value_nick,
            }
        )
        return True

    def on_error(self, _bus, message):
        err, debug = message.parse_error()
        emit({"event": "error", "what": err.message, "debug": debug})
        self.loop.quit()

    def stop(self):
        if self.resource:
            try:
                urllib.request.urlopen(urllib.request.Request(self.resource, method="DELETE"), timeout=5)
            except (urllib.error.URLError, OSError):
                pass
        self.loop.quit()
        return False

    def run(self):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self.stop)
        GLib.timeout_add(1000, self.report)
        self.pipeline.set_state(Gst.State.PLAYING)
        self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)


def main():
    Gst.init(None)
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "publish":
        peer = Peer("publish", args[1], args[2])
    elif len(args) == 2 and args[0] == "view":
        peer = Peer("view", args[1], None)
    else:
        sys.exit(__doc__)
    peer.run()


if __name__ == "__main__":
    main()
