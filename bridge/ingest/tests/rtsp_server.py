#!/usr/bin/env python3
"""An RTSP camera for bridge/ingest/tests/rtsp_pull.rs: GStreamer's RTSP server on 127.0.0.1.

Serves live test video (x264, 320x240 at 30 fps, an IDR every 30 frames, no B-frames) and a
sine tone (AAC, RFC 3640 mpeg4-generic) at rtsp://127.0.0.1:PORT/PATH, with Basic
authentication when --user is given. Prints "ready" once it listens. Each client gets its own
pipeline, so a reconnecting client starts at a keyframe, as it would with most cameras.

Needs python3-gi and the typelibs gir1.2-gstreamer-1.0 and gir1.2-gst-rtsp-server-1.0.
"""

import argparse
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=30"
    " ! rtph264pay name=pay0 pt=96"
    " audiotestsrc is-live=true ! audioconvert ! audioresample ! avenc_aac"
    " ! rtpmp4gpay name=pay1 pt=97 )"
)

ROLE = "camera-viewer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH)

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", ROLE)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role(ROLE, "media.factory.access", True)
        permissions.add_permission_for_role(ROLE, "media.factory.construct", True)
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory(args.path, factory)

    # A restarted server binds the port its killed predecessor held; retry briefly in case the
    # kernel has not released it yet.
    deadline = time.monotonic() + 20
    while server.attach(None) == 0:
        if time.monotonic() > deadline:
            print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
