#!/usr/bin/env python3
"""Where an RPC's time goes, from berthd's own log.

    bench/steps.py BERTHD_LOG [RPC...]

berthd must run with `--log-level info,berth_server::instrument=trace,berth_runtime::failpoint=trace`:
the instrument layer then logs `started` when a request comes in and `ok elapsed_us=N` when
its response is built, and the runtime core logs `step reached step="<op>:<step>"` at each
named step of a multi-step operation (the crash-test steps of crates/runtime/src/failpoint.rs),
all under the RPC's span, with the time of each line.

For every RPC (or those named), prints each segment between two consecutive marks of one
call (`started`, the steps, `ok`), with its median, mean and largest time in ms over the
calls that reached both marks, and the call's whole time. Calls that failed are left out.
"""

import re
import statistics
import sys
from datetime import datetime

LINE = re.compile(
    r'^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z\s+\w+\s+'
    r'(?P<span>rpc\{rpc="(?P<rpc>\w+)"[^}]*\}):\s+\S+:\s+(?P<msg>.*)$'
)
STEP = re.compile(r'step reached step="?(?P<step>[\w:]+)"?')


def stamp(text):
    # Python's %f takes at most 6 digits; the log may print more.
    whole, frac = text.split(".")
    return datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").timestamp() + float("0." + frac)


def calls(lines):
    """Yields (rpc, [(mark, seconds)...]) per finished call, in the order they end."""
    open_calls = {}
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        span, rpc, msg, t = m["span"], m["rpc"], m["msg"], stamp(m["ts"])
        if msg == "started":
            open_calls[span] = [("started", t)]
        elif span not in open_calls:
            continue
        elif s := STEP.search(msg):
            open_calls[span].append((s["step"], t))
        elif msg.startswith("ok"):
            marks = open_calls.pop(span)
            marks.append(("ok", t))
            yield rpc, marks
        elif msg.startswith(("rejected", "failed", "unimplemented")):
            open_calls.pop(span, None)


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    wanted = set(sys.argv[2:])
    segments = {}  # rpc -> {(from, to): [ms...]}, in first-seen order
    totals = {}
    with open(sys.argv[1], errors="replace") as log:
        for rpc, marks in calls(log):
            if wanted and rpc not in wanted:
                continue
            per = segments.setdefault(rpc, {})
            for (a, ta), (b, tb) in zip(marks, marks[1:]):
                per.setdefault((a, b), []).append((tb - ta) * 1000)
            totals.setdefault(rpc, []).append((marks[-1][1] - marks[0][1]) * 1000)
    if not segments:
        print("no timed calls in the log (is berthd logging at the levels above?)")
        sys.exit(1)
    for rpc, per in segments.items():
        n = len(totals[rpc])
        print(f"{rpc} ({n} calls)")
        print(f"  {'segment':<56} {'p50 ms':>8} {'mean ms':>8} {'max ms':>8}")
        for (a, b), values in per.items():
            print(f"  {a + ' -> ' + b:<56} {statistics.median(values):8.2f} "
                  f"{statistics.fmean(values):8.2f} {max(values):8.2f}")
        t = totals[rpc]
        print(f"  {'whole call':<56} {statistics.median(t):8.2f} "
              f"{statistics.fmean(t):8.2f} {max(t):8.2f}")


if __name__ == "__main__":
    main()
