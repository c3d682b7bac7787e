#!/usr/bin/env python3
"""One row of `scripts/bench.sh versus-janus`: the load generator's JSON reports of the Fanout
run and the Janus run at the same N, and the floor's (`fanout-udp-floor sink`), as a markdown
table row.

usage: versus_row.py N FANOUT_JSON JANUS_JSON FLOOR_JSON MAX_LOSS_PCT

Exits 1 (after the row and a line saying why) when either server did not manage N subscribers:
not all connected and receiving, no measured window, or a subscriber lost more than
MAX_LOSS_PCT % of its packets. A floor that did not deliver every copy to every socket gets a
line saying so (its figure is then too low), but does not stop the run: it is a reference,
not a contender.
"""
import json
import sys


def load(path):
    """The report: the last line of the file, or {} when the run left none."""
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, IndexError, ValueError):
        return {}


def trouble(report, n, max_loss):
    """Why this run does not count, or '' when it does."""
    if not report.get("steady"):
        return "no measured window (the load generator failed, or the ramp never finished)"
    issues = []
    connected, receiving = report.get("connected", 0), report.get("receiving", 0)
    if connected < n or receiving < n:
        issues.append(f"{connected}/{n} connected, {receiving}/{n} receiving")
    if report.get("loss_pct_max", 0) > max_loss:
        issues.append(f"a subscriber lost {report['loss_pct_max']:.2f} % of its packets")
    return ", ".join(issues)


def floor_trouble(floor, n, max_loss):
    """Why the floor's figure does not count, or '' when it does."""
    if floor.get("forward_us_per_packet") is None:
        return "no measurement (the forwarder or the sink failed)"
    issues = []
    if floor.get("receiving", 0) < n:
        issues.append(f"{floor.get('receiving', 0)}/{n} sockets receiving")
    if floor.get("loss_pct_max", 0) > max_loss:
        issues.append(f"a socket lost {floor['loss_pct_max']:.2f} % of its packets")
    return ", ".join(issues)


def core_share(report):
    """The server's CPU over the measured window, as a share of one core."""
    steady = report.get("steady") or {}
    return steady.get("server_cpu_s", 0) / max(steady.get("seconds", 0), 1e-9)


def cell(value, spec):
    return "-" if value is None else format(value, spec)


def main():
    n, max_loss = int(sys.argv[1]), float(sys.argv[5])
    runs = {"Fanout": load(sys.argv[2]), "Janus": load(sys.argv[3])}
    fanout, janus, floor = runs["Fanout"], runs["Janus"], load(sys.argv[4])
    us_f, us_j = fanout.get("server_us_per_packet"), janus.get("server_us_per_packet")
    us_floor = floor.get("forward_us_per_packet")
    ratio = us_j / us_f if us_f and us_j else None
    above_floor = us_f / us_floor if us_f and us_floor else None
    print(
        f"| {n} | {cell(us_f, '.2f')} | {cell(us_j, '.2f')} | {cell(ratio, '.2f')}× "
        f"| {cell(us_floor, '.2f')} | {cell(above_floor, '.2f')}× "
        f"| {fanout.get('packets_per_sec', 0):,.0f} / {janus.get('packets_per_sec', 0):,.0f} "
        f"| {fanout.get('loss_pct_max', 0):.2f} % / {janus.get('loss_pct_max', 0):.2f} % "
        f"| {core_share(fanout):.0%} / {core_share(janus):.0%} |"
    )
    why = floor_trouble(floor, n, max_loss)
    if why:
        print(f"\nThe floor at N = {n} does not count: {why}.")
    failed = False
    for name, report in runs.items():
        why = trouble(report, n, max_loss)
        if why:
            failed = True
            errors = "; ".join(report.get("errors", [])[:2])
            print(f"\n{name} did not manage {n} subscribers: {why}" + (f" (first errors: {errors})" if errors else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
