#!/usr/bin/env python3
"""Watches the SFU from outside for the overload benchmark (scripts/bench.sh overload).

  sfu_watch.py tail METRICS_URL PUBLISHER_PID
      Measures the server's send rate (fanout_sfu_bytes_out_total) for 1 s, kills the
      publisher (SIGKILL: its media stops at once), then polls every 25 ms until the rate
      has stayed under 5 % of the steady rate for 2 s. Prints, as JSON, how long the server
      went on sending media after the publisher stopped (the last 25 ms interval above 5 %).
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


def tail(url, pid):
    first = counters(url)
    time.sleep(1.0)
    second = counters(url)
    steady = (second["bytes_out"] - first["bytes_out"]) / (second["at"] - first["at"])
    os.kill(pid, signal.SIGKILL)
    stopped = time.monotonic()
    last_busy = stopped
    prev = counters(url)
    while time.monotonic() - last_busy < 2.0 and time.monotonic() - stopped < 30:
        time.sleep(0.025)
        cur = counters(url)
        rate = (cur["bytes_out"] - prev["bytes_out"]) / max(cur["at"] - prev["at"], 1e-6)
        if rate > 0.05 * steady:
            last_busy = cur["at"]
        prev = cur
    print(json.dumps({"steadyBytesPerSec": round(steady), "mediaAfterStopMs": round((last_busy - stopped) * 1000)}))


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
    if len(argv) >= 3 and argv[0] == "tail":
        tail(argv[1], int(argv[2]))
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
