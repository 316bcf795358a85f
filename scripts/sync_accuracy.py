#!/usr/bin/env python3
"""The accuracy check of issue 10: `tsync sync` over TCP loopback (both sides
read the same clock, so the true offset is 0 at every time), with its default
whole-trace model, beside the per-series default on the same probes.

For each run: `tsync agent` on 127.0.0.1, `tsync sync --duration D`, then
  whole-trace: PREFIX.vcpu0.model.json, the model the session wrote;
  per-series:  `tsync estimate --estimator split_envelope PREFIX.probes.csv`
               (the polyline through per-series estimates that
               `tsync sync --model-estimator none` writes, fitted to the same probes).
Each model corrects the guest time of every recorded probe with
`tsync correct --model M --bounds`; the error is host - guest (truth 0).
Prints mean, sd, max |error|, the median hard-interval width and the number of
hard intervals that exclude the truth, per run and pooled, with the load.

Usage: scripts/sync_accuracy.py --tsync build/dev/examples/tsync [--duration 20s]
       [--runs 1] [--interval 1s] [--port 47990] [--out DIR]
Exit status 0; 1 when a command fails.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def load_probe_rows(path):
    """(t1, g, t2, burst) of every probe of a probes CSV."""
    rows, hdr = [], None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if hdr is None:
            hdr = line.split(",")
            continue
        r = dict(zip(hdr, line.split(",")))
        rows.append((int(r["t1"]), int(r["g"]), int(r["t2"]), int(r["burst"])))
    return rows


def load_probes(path):
    return [g for _, g, _, _ in load_probe_rows(path)]


def score(tsync, model, gs):
    p = subprocess.run([tsync, "correct", "--model", model, "--bounds"], input="\n".join(map(str, gs)) + "\n",
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"tsync correct --model {model}: exit {p.returncode}: {p.stderr.strip()[:300]}")
    errs, widths, misses = [], [], 0
    for g, line in zip(gs, p.stdout.split()):
        h, lo, hi = map(int, line.split(","))
        errs.append(h - g)
        widths.append(hi - lo)
        misses += 0 if lo <= g <= hi else 1
    return errs, widths, misses


def summary(name, errs, widths, misses):
    widths = sorted(widths)
    return (f"{name:12s} n={len(errs):6d}  mean {statistics.mean(errs):9.1f} ns  sd {statistics.pstdev(errs):9.1f} ns  "
            f"max|err| {max(abs(e) for e in errs):8d} ns  median hard width {widths[len(widths) // 2]:8d} ns  "
            f"misses {misses}")


def one_run(a, i, out):
    prefix = os.path.join(out, f"run{i}")
    port = str(a.port + i)
    agent = subprocess.Popen([a.tsync, "agent", "--transport", f"tcp:127.0.0.1:{port}", "--connections", "1",
                              "--no-pin"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        s = subprocess.run([a.tsync, "sync", "--transport", f"tcp:127.0.0.1:{port}", "--duration", a.duration,
                            "--interval", a.interval, "--connect-timeout", "10s", "--output", prefix, "--quiet"],
                           capture_output=True, text=True)
        if s.returncode != 0:
            raise RuntimeError(f"tsync sync: exit {s.returncode}: {s.stderr.strip()[:300]}")
    finally:
        try:
            agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    gs = load_probes(prefix + ".probes.csv")
    per_series = prefix + ".per_series.model.json"
    e = subprocess.run([a.tsync, "estimate", "--estimator", "split_envelope", "--out", per_series,
                        prefix + ".probes.csv"], capture_output=True, text=True)
    if e.returncode != 0:
        raise RuntimeError(f"tsync estimate: exit {e.returncode}: {e.stderr.strip()[:300]}")
    return score(a.tsync, prefix + ".vcpu0.model.json", gs), score(a.tsync, per_series, gs), s.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tsync", required=True)
    ap.add_argument("--duration", default="20s")
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--port", type=int, default=47990)
    ap.add_argument("--out", help="directory for the session files (default: a new temporary one)")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="tsync-accuracy-")
    os.makedirs(out, exist_ok=True)
    load_before = open("/proc/loadavg").read().split()[:3]
    pooled = {"whole-trace": ([], [], 0), "per-series": ([], [], 0)}
    try:
        for i in range(a.runs):
            whole, per, err = one_run(a, i, out)
            for name, (errs, widths, misses) in (("whole-trace", whole), ("per-series", per)):
                print(f"run {i}: " + summary(name, errs, widths, misses))
                pe, pw, pm = pooled[name]
                pooled[name] = (pe + errs, pw + widths, pm + misses)
            if err.strip():
                print(f"run {i}: stderr of tsync sync: {err.strip()[:300]}")
    except RuntimeError as ex:
        print(f"sync_accuracy: {ex}", file=sys.stderr)
        return 1
    load_after = open("/proc/loadavg").read().split()[:3]
    print(f"all {a.runs} run(s) of {a.duration} (files in {out}); load average before {' '.join(load_before)}, "
          f"after {' '.join(load_after)}; {os.cpu_count()} CPUs")
    for name, (errs, widths, misses) in pooled.items():
        print("pooled: " + summary(name, errs, widths, misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
