#!/usr/bin/env python3
"""CLI tests of `tsync tracecmd merge` on real trace-cmd files.

Usage: merge_cli_test.py TSYNC DIR [--recorded]

DIR holds host.dat and guest.dat (the committed pair, or a fresh recording by
record_pair.sh with --recorded: then host_v6.dat / guest_v6.dat are merged too,
and a recording that was skipped skips this test with its reason, exit 77).

Checked on each pair:
  - the text is time-ordered, holds every event of both files (counts from
    `trace-cmd report --raw-ts`), and its host events equal `trace-cmd report
    --raw-ts HOST.dat` line for line per CPU (comm-pid, timestamp, name, info);
  - the JSON parses (python3 json) with the host and the guest as processes 1 and
    2 (named), one named thread per CPU / vCPU, every event an instant event of a
    known thread, time-ordered, and every guest event at `tsync correct` of its raw
    timestamp with the vCPU's own TIME_SHIFT table;
  - per-vCPU models (v0=, v1=, %v) with their hard intervals in args, a model with
    a break, per-vCPU tables, --tsc-writes with an offset step, --rounding tracecmd
    bit for bit against `trace-cmd report -t`;
  - errors: a missing file, a guest without TIME_SHIFT, a bad option, an output
    that cannot be written (named, exit 1, no partial file left).
"""
import decimal
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
FAILS = []
TEXT = re.compile(r"^(?P<tag>[^:]*?): (?P<commpid>.*?) \[(?P<cpu>\d{3,})\] +(?P<s>-?\d+)\.(?P<ns>\d{9}): (?P<rest>.*)$")
REPORT = re.compile(r"^(?P<before>.*?)\[(?P<cpu>\d{3,})\]\s*(?P<ts>\d+): (?P<rest>.*)$")


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


# Extra arguments of every merge and table call of the pair being checked:
# ["--use-unlinked"] when trace-cmd wrote the guest's TIME_SHIFT without linking
# it into its options chain (trace-cmd then ignores it; tsync names it and uses
# it only when asked).
UNLINKED = []


def unlinked_args(tsync, host, guest):
    """["--use-unlinked"] when tsync refuses the pair for an unlinked TIME_SHIFT, else []."""
    p = run([tsync, "tracecmd", "merge", host, guest])
    return ["--use-unlinked"] if p.returncode != 0 and "--use-unlinked uses it" in p.stderr else []


def merge(tsync, *args):
    p = run([tsync, "tracecmd", "merge", *args, *UNLINKED])
    if p.returncode != 0:
        raise SystemExit(f"FAIL: tsync tracecmd merge {' '.join(args)}: rc {p.returncode}: {p.stderr}")
    return p


def parse_text(out):
    events = []
    for line in out.splitlines():
        if re.search(r": CPU:\d+ \[", line):
            continue
        m = TEXT.match(line)
        if not check(m is not None, f"text line does not parse: {line!r}"):
            continue
        ns = int(m["s"]) * 1_000_000_000 + (int(m["ns"]) if not m["s"].startswith("-") else -int(m["ns"]))
        events.append((m["tag"].strip(), m["commpid"].strip(), int(m["cpu"]), ns, m["rest"]))
    return events


def report(path, flag):
    p = run(["trace-cmd", "report", flag, path])
    if p.returncode != 0:
        return None
    per_cpu = {}
    for line in p.stdout.splitlines():
        m = REPORT.match(line)
        if m:
            ts = int(m["ts"])
            per_cpu.setdefault(int(m["cpu"]), []).append((m["before"].rstrip(), ts, m["rest"]))
    return per_cpu


def report_t(path):
    """`trace-cmd report -t`: per CPU, the corrected times in ns."""
    p = run(["trace-cmd", "report", "-t", path])
    if p.returncode != 0:
        return None
    per_cpu = {}
    for line in p.stdout.splitlines():
        m = re.search(r"\[(\d{3,})\]\s*(\d+)\.(\d{9}):", line)
        if m:
            per_cpu.setdefault(int(m[1]), []).append(int(m[2]) * 1_000_000_000 + int(m[3]))
    return per_cpu


def load_json(path):
    with open(path) as f:
        return json.load(f, parse_float=decimal.Decimal)


def json_ns(ts):
    return int(decimal.Decimal(ts) * 1000)


def check_json(doc, guest_name, host_cpus, guest_cpus, label):
    ev = doc["traceEvents"]
    meta = [e for e in ev if e["ph"] == "M"]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    check(procs == {1: "host", 2: guest_name}, f"{label}: processes {procs}")
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    want = {(1, c): f"CPU {c}" for c in range(host_cpus)}
    want.update({(2, c): f"vCPU {c}" for c in range(guest_cpus)})
    check(threads == want, f"{label}: threads {sorted(threads.items())} != {sorted(want.items())}")
    inst = [e for e in ev if e["ph"] != "M"]
    check(all(e["ph"] == "i" and e["s"] == "t" and (e["pid"], e["tid"]) in want for e in inst),
          f"{label}: every event is an instant event of a named thread")
    times = [json_ns(e["ts"]) for e in inst]
    check(all(a <= b for a, b in zip(times, times[1:])), f"{label}: JSON events are time-ordered")
    check(all("fields" in e["args"] and "raw_ts" in e["args"] for e in inst), f"{label}: args hold raw_ts and fields")
    return inst


def table_for(tsync, guest, cpu, tmp):
    p = run([tsync, "tracecmd", "table", "--cpu", str(cpu), *UNLINKED, guest])
    if p.returncode != 0:
        return None
    path = os.path.join(tmp, f"ts{cpu}.csv")
    with open(path, "w") as f:
        f.write(p.stdout)
    return path


def correct(tsync, table_args, raws):
    p = run([tsync, "correct", *table_args], input="".join(f"{t}\n" for t in raws))
    if p.returncode != 0:
        raise SystemExit(f"FAIL: tsync correct {table_args}: {p.stderr}")
    return [int(x) for x in p.stdout.split()]


def model(segments):
    segs = []
    for begin, end, off, lo, hi in segments:
        segs.append({"begin": begin, "end": end, "ref": begin, "offset": off, "slope_q48": 0, "cause": "start",
                     "hard": {"lo": [[off + lo, 0]], "hi": [[off + hi, 0]]}, "stat": None,
                     "diagnostics": {"probes_used": 1, "probes_rejected": 0, "min_rtt": 1, "bursts": 1}})
    return json.dumps({"format": "tsync-model", "version": 1, "estimator": "test", "segments": segs})


def guest_events(inst):
    return [e for e in inst if e["pid"] == 2]


def check_pair(tsync, host, guest, tmp, label, full=True):
    have_tc = shutil.which("trace-cmd") is not None
    UNLINKED[:] = unlinked_args(tsync, host, guest)
    if UNLINKED:
        print(f"{label}: the guest's TIME_SHIFT is not linked into its options chain (a trace-cmd bug): "
              "merged with --use-unlinked")
    # ---- text: order, completeness, host differential
    p = merge(tsync, host, guest)
    text = parse_text(p.stdout)
    times = [e[3] for e in text]
    check(len(text) > 0 and all(a <= b for a, b in zip(times, times[1:])), f"{label}: text is time-ordered")
    tags = sorted({e[0] for e in text})
    check(len(tags) == 2 and "host" in tags, f"{label}: text tags {tags}")
    guest_tag = [t for t in tags if t != "host"][0]
    host_rep = report(host, "--raw-ts") if have_tc else None
    guest_rep = report(guest, "--raw-ts") if have_tc else None
    if host_rep is not None and guest_rep is not None:
        n_host = sum(len(v) for v in host_rep.values())
        n_guest = sum(len(v) for v in guest_rep.values())
        check(sum(1 for e in text if e[0] == "host") == n_host, f"{label}: every host event is in the text ({n_host})")
        check(sum(1 for e in text if e[0] == guest_tag) == n_guest, f"{label}: every guest event is in the text ({n_guest})")
        ours = {}
        for tag, commpid, cpu, ns, rest in text:
            if tag == "host":
                ours.setdefault(cpu, []).append((commpid, ns, rest))
        bad = 0
        for cpu, lines in host_rep.items():
            mine = ours.get(cpu, [])
            if len(mine) != len(lines):
                bad += 1
                check(False, f"{label}: host CPU {cpu}: {len(mine)} events, trace-cmd report {len(lines)}")
                continue
            for (before, ts, rest), (commpid, ns, myrest) in zip(lines, mine):
                if not (before.endswith(commpid) and ts == ns and rest == myrest):
                    bad += 1
                    if bad <= 3:
                        check(False, f"{label}: host event differs from trace-cmd report: {before}[{cpu}]{ts}: {rest!r} vs "
                                     f"{commpid} {ns}: {myrest!r}")
        check(bad == 0, f"{label}: every host event equals trace-cmd report --raw-ts ({bad} differ)")
        print(f"{label}: text: {len(text)} events, host {n_host} equal to trace-cmd report, guest {n_guest}")
    else:
        print(f"{label}: trace-cmd not usable here: the host differential is skipped")

    # ---- JSON with the guest's own TIME_SHIFT
    out = os.path.join(tmp, "m.json")
    p = merge(tsync, host, guest, "--format", "json", "-o", out)
    check(not any(n.startswith("m.json.tmp") for n in os.listdir(tmp)), f"{label}: no temporary file left")
    doc = load_json(out)
    inst = [e for e in doc["traceEvents"] if e["ph"] != "M"]
    host_cpus = 1 + max([e["tid"] for e in inst if e["pid"] == 1], default=-1)
    guest_cpus = 1 + max([e["tid"] for e in inst if e["pid"] == 2], default=-1)
    threads = [e for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"]
    host_cpus = max(host_cpus, sum(1 for e in threads if e["pid"] == 1))
    guest_cpus = max(guest_cpus, sum(1 for e in threads if e["pid"] == 2))
    inst = check_json(doc, guest_tag, host_cpus, guest_cpus, label + " json")
    check(len(inst) == len(text), f"{label}: JSON and text have the same events ({len(inst)} vs {len(text)})")
    ge = guest_events(inst)
    per_vcpu = {}
    for e in ge:
        per_vcpu.setdefault(e["tid"], []).append(e)
    for v, evs in per_vcpu.items():
        t = table_for(tsync, guest, v, tmp)
        if not check(t is not None, f"{label}: tsync tracecmd table --cpu {v}"):
            continue
        want = correct(tsync, ["--table", t, "--mode", "interpolate"], [e["args"]["raw_ts"] for e in evs])
        got = [json_ns(e["ts"]) for e in evs]
        check(got == want, f"{label}: vCPU {v}: guest events at tsync correct of their raw times with the TIME_SHIFT table")

    # ---- the JSON fields are the record's: sched_switch's agree with libtraceevent's text (--info)
    p = merge(tsync, host, guest, "--format", "json", "--info", "-o", out)
    evs = load_json(out)["traceEvents"]
    sw = [e for e in evs if e.get("name") == "sched_switch"]
    fk = [e for e in evs if e.get("name") == "sched_process_fork"]
    ok = len(sw) + len(fk) > 0
    for e in sw:
        f, info = e["args"]["fields"], e["args"]["info"]
        ok = ok and info.startswith(f"{f['prev_comm']}:{f['prev_pid']} [{f['prev_prio']}]") and \
            f"==> {f['next_comm']}:{f['next_pid']} [{f['next_prio']}]" in info
    for e in fk:
        f, info = e["args"]["fields"], e["args"]["info"]
        ok = ok and info == f"comm={f['parent_comm']} pid={f['parent_pid']} child_comm={f['child_comm']} child_pid={f['child_pid']}"
    check(ok, f"{label}: sched_switch / sched_process_fork fields in JSON agree with trace-cmd's text of the same event "
              f"({len(sw)} + {len(fk)} events)")
    if not full:
        return
    # ---- per-vCPU models with hard intervals, one with a break
    raws = sorted(e["args"]["raw_ts"] for e in ge)
    mid = raws[len(raws) // 2]
    mdir = os.path.join(tmp, "models")
    os.makedirs(mdir, exist_ok=True)
    offs = {0: (1000, -50, 70), 1: (-2000, -10, 10)}
    for v, (off, lo, hi) in offs.items():
        with open(os.path.join(mdir, f"run.vcpu{v}.model.json"), "w") as f:
            f.write(model([(0, 2**62, off, lo, hi)]))
    with open(os.path.join(mdir, "break.json"), "w") as f:
        f.write(model([(0, mid, 300, -5, 5), (mid, 2**62, 90000, -7, 7)]))
    for args, name in (
        (["--model", os.path.join(mdir, "run.vcpu%v.model.json")], "%v"),
        (["--model", "v0=" + os.path.join(mdir, "run.vcpu0.model.json"),
          "--model", "g1.v1=" + os.path.join(mdir, "run.vcpu1.model.json")], "v0= g1.v1="),
    ):
        merge(tsync, host, guest, "--format", "json", "-o", out, *args)
        gi = guest_events(check_json(load_json(out), guest_tag, host_cpus, guest_cpus, f"{label} models {name}"))
        ok = len(gi) == len(ge)
        for e in gi:
            off, lo, hi = offs[e["tid"] % 2] if e["tid"] in offs else (None, None, None)
            if off is None:
                continue
            raw, at, a = e["args"]["raw_ts"], json_ns(e["ts"]), e["args"]
            ok = ok and at == raw + off and a.get("hard_lo_ns") == raw + off + lo - 1 and a.get("hard_hi_ns") == raw + off + hi + 1
        check(ok, f"{label}: per-vCPU models ({name}) place every guest event at raw + its vCPU's offset, hard interval in args")
    merge(tsync, host, guest, "--format", "json", "-o", out, "--model", os.path.join(mdir, "break.json"))
    gi = guest_events(load_json(out)["traceEvents"])
    gi = [e for e in gi if e["ph"] == "i"]
    ok = len(gi) == len(ge)
    for e in gi:
        raw = e["args"]["raw_ts"]
        want = raw + (300 if raw < mid else 90000)
        ok = ok and json_ns(e["ts"]) == want and e["args"]["hard_lo_ns"] <= want <= e["args"]["hard_hi_ns"]
    check(ok, f"{label}: a model with a break places events before and after it with each segment's offset")

    # ---- per-vCPU tables via %v, step mode
    for v in per_vcpu:
        with open(os.path.join(mdir, f"t{v}.csv"), "w") as f:
            f.write(f"time,offset\n0,{100 + v}\n")
    merge(tsync, host, guest, "--format", "json", "-o", out, "--table", os.path.join(mdir, "t%v.csv"), "--mode", "step")
    gi = [e for e in guest_events(load_json(out)["traceEvents"]) if e["ph"] == "i"]
    check(len(gi) == len(ge) and all(json_ns(e["ts"]) == e["args"]["raw_ts"] + 100 + e["tid"] for e in gi),
          f"{label}: per-vCPU tables (%v, step mode)")

    # ---- --tsc-writes: one offset per vCPU, then a step on vCPU 0
    def u(x):
        return x % 2**64
    step_host = mid + 500
    recs = (f"       CPU 0/KVM-4001    [002] d..1.         1000: kvm_write_tsc_offset: vcpu=0 prev=0 next={u(-500)}\n"
            f"       CPU 1/KVM-4002    [003] d..1.         1004: kvm_write_tsc_offset: vcpu=1 prev=0 next={u(300)}\n"
            f"       CPU 0/KVM-4001    [002] d..1. {step_host}: kvm_write_tsc_offset: vcpu=0 prev={u(-500)} next={u(-10500)}\n")
    tw = os.path.join(mdir, "writes.txt")
    with open(tw, "w") as f:
        f.write(recs)
    p = merge(tsync, host, guest, "--format", "json", "-o", out, "--tsc-writes", tw)
    gi = [e for e in guest_events(load_json(out)["traceEvents"]) if e["ph"] == "i"]
    ok, amb = len(gi) == len(ge), 0
    for e in gi:
        raw, at, a = e["args"]["raw_ts"], json_ns(e["ts"]), e["args"]
        ok = ok and a["hard_lo_ns"] <= at <= a["hard_hi_ns"]
        if e["tid"] == 1:
            ok = ok and at == raw - 300 and a["hard_lo_ns"] == a["hard_hi_ns"] == at
        elif raw < step_host - 10500:
            ok = ok and at == raw + 500 and a["hard_lo_ns"] == a["hard_hi_ns"]
        elif raw >= step_host - 500:
            ok = ok and at == raw + 10500 and a["hard_lo_ns"] == a["hard_hi_ns"]
        elif a["hard_lo_ns"] != a["hard_hi_ns"]:
            amb += 1
            ok = ok and a["hard_lo_ns"] == raw + 500 and a["hard_hi_ns"] == raw + 10500
    check(ok, f"{label}: --tsc-writes places each vCPU through its offsets, across the step (ambiguous: {amb})")

    # ---- --rounding tracecmd: bit for bit with trace-cmd report -t (where it reads the TIME_SHIFT right)
    if have_tc and os.path.basename(guest).startswith("guest"):
        rep = report_t(guest)
        p = merge(tsync, host, guest, "--rounding", "tracecmd")
        mine = {}
        for tag, commpid, cpu, ns, rest in parse_text(p.stdout):
            if tag == guest_tag:
                mine.setdefault(cpu, []).append(ns)
        if rep is not None and UNLINKED:
            print(f"{label}: --rounding tracecmd not compared: trace-cmd report -t ignores an unlinked TIME_SHIFT")
        elif rep is not None and "trace-cmd bug B7" in p.stderr:
            # trace-cmd wrote every per-CPU count as the last CPU's: trace-cmd itself
            # then reads other samples than were recorded (tsync recovers the real
            # ones), so its -t times are not the reference here.
            print(f"{label}: --rounding tracecmd not compared: the guest file has trace-cmd bug B7 "
                  "(trace-cmd report -t reads misaligned TIME_SHIFT samples)")
        elif rep is not None:
            check({c: sorted(v) for c, v in mine.items()} == {c: sorted(v) for c, v in rep.items()},
                  f"{label}: --rounding tracecmd equals trace-cmd report -t on every guest event")


def check_errors(tsync, host, guest, tmp):
    extra = unlinked_args(tsync, host, guest)
    p = run([tsync, "tracecmd", "merge", host, os.path.join(tmp, "missing.dat")])
    check(p.returncode == 1 and "missing.dat" in p.stderr, f"a missing guest file is named: {p.stderr!r}")
    p = run([tsync, "tracecmd", "merge", host, host])
    check(p.returncode == 1 and host in p.stderr and "TIME_SHIFT" in p.stderr, f"a guest without TIME_SHIFT is named: {p.stderr!r}")
    p = run([tsync, "tracecmd", "merge", host, guest, *extra, "--format", "xml"])
    check(p.returncode == 2 and "--format" in p.stderr, f"a bad --format is a usage error: {p.stderr!r}")
    p = run([tsync, "tracecmd", "merge", host])
    check(p.returncode == 2, "one file is a usage error")
    p = run([tsync, "tracecmd", "merge", host, guest, *extra, "--model", os.path.join(tmp, "nomodel.json")])
    check(p.returncode == 1 and "nomodel.json" in p.stderr and "vCPU" in p.stderr, f"a missing model is named: {p.stderr!r}")
    bad_out = os.path.join(tmp, "no", "such", "dir", "out.txt")
    p = run([tsync, "tracecmd", "merge", host, guest, *extra, "-o", bad_out])
    check(p.returncode == 1 and bad_out in p.stderr, f"an output that cannot be created is named: {p.stderr!r}")
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            p = subprocess.run([tsync, "tracecmd", "merge", host, guest, *extra], stdout=full, stderr=subprocess.PIPE, text=True)
        check(p.returncode == 1 and "write failed" in p.stderr, f"a full disk fails the merge: {p.stderr!r}")
    out = os.path.join(tmp, "kept.txt")
    with open(out, "w") as f:
        f.write("old\n")
    p = run([tsync, "tracecmd", "merge", host, guest, *extra, "-o", out, "--model", os.path.join(tmp, "nomodel.json")])
    with open(out) as f:
        check(p.returncode == 1 and f.read() == "old\n", "a failed merge leaves the old output file as it was")
    check(not [n for n in os.listdir(tmp) if ".tmp." in n], "a failed merge leaves no temporary file")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    tsync, d = sys.argv[1], sys.argv[2]
    recorded = "--recorded" in sys.argv[3:]
    if recorded and not os.path.exists(os.path.join(d, "OK")):
        why = open(os.path.join(d, "SKIPPED")).read() if os.path.exists(os.path.join(d, "SKIPPED")) else "no recording in " + d
        print("SKIPPED:", why)
        return SKIP
    pairs = [("host.dat", "guest.dat")]
    if recorded:
        pairs.append(("host_v6.dat", "guest_v6.dat"))
        pairs.append(("host.dat", "guest_v7_none.dat"))
    else:
        pairs.append(("b7_host.dat", "b7_guest.dat"))
    with tempfile.TemporaryDirectory() as tmp:
        for h, g in pairs:
            hp, gp = os.path.join(d, h), os.path.join(d, g)
            if os.path.exists(hp) and os.path.exists(gp):
                # the other formats of a recording: the text and JSON checks only (each open parses kallsyms)
                check_pair(tsync, hp, gp, tmp, f"{h}+{g}", full=(h, g) == pairs[0] or not recorded)
        check_errors(tsync, os.path.join(d, "host.dat"), os.path.join(d, "guest.dat"), tmp)
    if FAILS:
        print(f"{len(FAILS)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
