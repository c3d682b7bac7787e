#!/usr/bin/env python3
"""Watches one LL-HLS stream over HTTP for the benchmarks (no player, so it costs nothing).

  hls_watch.py ready BASE STREAM [--timeout S]
      Waits until the master playlist lists a variant and that variant's live playlist lists a
      part; prints the seconds it took.
  hls_watch.py lag BASE STREAM RENDITION SECONDS
      Polls the rendition's live playlist every 200 ms for SECONDS and prints, as JSON, how far
      behind the wall clock the newest listed media ends (its PROGRAM-DATE-TIME plus what
      follows it): p50/p95/max in ms. A transcoder that keeps up stays near one part.
"""
import datetime
import json
import re
import sys
import time
import urllib.request


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except Exception:  # a 404 before the stream exists, a refused connection
        return 0, ""


def ready(base, stream, timeout):
    started = time.time()
    while time.time() - started < timeout:
        status, master = get(f"{base}/hls/{stream}/master.m3u8")
        variant = re.search(r"^([^#\s][^\s]*/live\.m3u8)$", master, re.M) if status == 200 else None
        if variant:
            status, playlist = get(f"{base}/hls/{stream}/{variant.group(1)}")
            if status == 200 and "#EXT-X-PART:" in playlist:
                print(f"{time.time() - started:.3f}")
                return 0
        time.sleep(0.05)
    print("timeout", file=sys.stderr)
    return 1


def media_end(playlist):
    """Wall-clock end of the newest media listed: the last PROGRAM-DATE-TIME, plus the segments
    after it, plus the parts of the segment still being written (the parts listed after the
    last segment's URI; earlier parts belong to segments already counted)."""
    end, pending = None, 0.0
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1].replace("Z", "+00:00")
            end, pending = datetime.datetime.fromisoformat(stamp).timestamp(), 0.0
        elif end is None:
            continue
        elif line.startswith("#EXTINF:"):
            end += float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-PART:"):
            pending += float(re.search(r"DURATION=([0-9.]+)", line).group(1))
        elif line and not line.startswith("#"):
            pending = 0.0
    return None if end is None else end + pending


def lag(base, stream, rendition, seconds):
    samples = []
    until = time.time() + seconds
    while time.time() < until:
        status, playlist = get(f"{base}/hls/{stream}/{rendition}/live.m3u8")
        end = media_end(playlist) if status == 200 else None
        if end is not None:
            samples.append((time.time() - end) * 1000)
        time.sleep(0.2)
    samples.sort()
    pick = lambda p: round(samples[min(len(samples) - 1, int(p / 100 * len(samples)))]) if samples else None
    print(json.dumps({"p50Ms": pick(50), "p95Ms": pick(95), "maxMs": round(samples[-1]) if samples else None, "n": len(samples)}))
    return 0 if samples else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["ready"]:
        timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 30
        sys.exit(ready(args[1], args[2], timeout))
    if args[:1] == ["lag"]:
        sys.exit(lag(args[1], args[2], args[3], float(args[4])))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
