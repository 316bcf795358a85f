#!/usr/bin/env python3
"""Compile cost of tsync's public family headers, against a baseline TU.

Compiles one translation unit per header (and a baseline TU that includes only
<chrono> and <vector>) with the given compiler at -O2, interleaved, several
rounds, and takes each TU's minimum CPU time (user + system of the compiler
process: less sensitive to other load on the machine than wall time). A header
above its limit gets up to twice as many extra rounds (with the baseline); it
fails when its ratio to the baseline still exceeds the limit.

Usage: compile_cost.py CXX ROUNDS OUTDIR -I... -- NAME=LIMIT=INCLUDE[;INCLUDE...] ...
"""
import os
import resource
import subprocess
import sys


def cpu_time_of(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.stderr.write("compile failed: %s\n%s\n" % (" ".join(cmd), r.stdout))
        sys.exit(1)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), after.ru_maxrss


def main():
    argv = sys.argv[1:]
    if len(argv) < 4 or "--" not in argv:
        sys.stderr.write(__doc__)
        return 2
    cxx, rounds, outdir = argv[0], int(argv[1]), argv[2]
    sep = argv.index("--")
    flags = argv[3:sep]
    cases = []
    for spec in argv[sep + 1:]:
        name, limit, incs = spec.split("=", 2)
        cases.append((name, float(limit), incs.split(";")))
    os.makedirs(outdir, exist_ok=True)
    tus = [("baseline <chrono>+<vector>", None, ["<chrono>", "<vector>"])] + cases
    paths = []
    for i, (name, _, incs) in enumerate(tus):
        p = os.path.join(outdir, "cost_%d.cpp" % i)
        with open(p, "w") as f:
            f.write("// %s\n" % name)
            for inc in incs:
                f.write("#include %s\n" % (inc if inc.startswith("<") else '"%s"' % inc))
            f.write("int compile_cost_tu_%d() { return 0; }\n" % i)
        paths.append(p)
    best = [float("inf")] * len(tus)

    def measure(indices):
        for i in indices:
            t, _ = cpu_time_of([cxx, "-std=c++20", "-O2", *flags, "-c", paths[i], "-o", paths[i] + ".o"])
            best[i] = min(best[i], t)

    def above():
        return [i for i in range(1, len(tus)) if best[i] / best[0] > tus[i][1]]

    for _ in range(rounds):
        measure(range(len(tus)))
    # Other load only ever adds CPU time (cache and core sharing), so the minimum
    # converges on the true cost: a header above its limit gets up to 2 x ROUNDS
    # more rounds (with the baseline) before it counts as a failure.
    extra = 0
    while above() and extra < 2 * rounds:
        measure([0] + above())
        extra += 1
    if extra:
        print("%d extra round(s) for a ratio above its limit" % extra)
    base = best[0]
    failed = []
    print("%-40s %9s %7s %7s" % ("translation unit", "cpu s", "ratio", "limit"))
    print("%-40s %9.2f %7.2f %7s" % (tus[0][0], base, 1.0, "-"))
    for i, (name, limit, _) in enumerate(tus[1:], start=1):
        ratio = best[i] / base
        ok = ratio <= limit
        print("%-40s %9.2f %7.2f %7.1f %s" % (name, best[i], ratio, limit, "" if ok else "  << above the limit"))
        if not ok:
            failed.append(name)
    if failed:
        print("compile cost above the limit for: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
