#!/usr/bin/env python3
"""Watches the SFU from outside for the overload benchmark (scripts/bench.sh overload).

  sfu_watch.py stop PUBLISHER_PID
      Kills the publisher (SIGKILL: its media stops at once) and prints the time, as JSON
      (the load generator reports when the last media reached a subscriber).
  sfu_watch.py memory PID SECONDS [EVERY]
      Samples the process's resident memory every EVERY seconds (default 10) for SECONDS and
      prints the samples, in MiB, as JSON.
  sfu_watch.py counters METRICS_URL
      Prints the SFU's packet counters and drops as JSON (for differences over a window).
"""
import json
import os
import re
import signal
import sys
import time
import urllib.request

COUNTERS = {
    "packets_out": r"^fanout_sfu_packets_out_total (\S+)$",
    "bytes_out": r"^fanout_sfu_bytes_out_total (\S+)$",
    "late_drops": r'^fanout_sfu_viewer_drops_total\{reason="late"\} (\S+)$',
    "send_drops": r'^fanout_sfu_viewer_drops_total\{reason="send_buffer"\} (\S+)$',
    "late_restarts": r"^fanout_sfu_late_restarts_total (\S+)$",
}


def counters(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for name, pattern in COUNTERS.items():
        m = re.search(pattern, text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    out["at"] = time.monotonic()
    return out


def stop(pid):
    os.kill(pid, signal.SIGKILL)
    print(json.dumps({"stoppedUnixMs": time.time() * 1000}))


def memory(pid, seconds, every):
    samples = []
    end = time.monotonic() + seconds
    while True:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
        samples.append(round(rss / 1024))
        if time.monotonic() + every > end + 0.01:
            break
        time.sleep(every)
    print(json.dumps(samples))


def main(argv):
    if len(argv) >= 2 and argv[0] == "stop":
        stop(int(argv[1]))
    elif len(argv) >= 3 and argv[0] == "memory":
        memory(int(argv[1]), float(argv[2]), float(argv[3]) if len(argv) > 3 else 10.0)
    elif len(argv) >= 2 and argv[0] == "counters":
        print(json.dumps(counters(argv[1])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
