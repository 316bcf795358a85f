#!/usr/bin/env python3
"""Boot the tsync test guest under QEMU, sync with it across a reset and a
pause, and check the sync's outputs against guest marks.

The guest (tests/guest/make_guest.sh) runs `tsync agent` on the virtio-serial
port tsync.0 and `tsync-mark` on tsync.mark. This driver:

  1. starts qemu-system-x86_64 (q35, TCG, or KVM when /dev/kvm works) with both
     ports on host Unix sockets and a QMP socket, and waits for the guest's
     "tsync-guest: ready" console line (boot time);
  2. takes a guest mark every --mark-every seconds for the whole run: it stamps
     the host clock (CLOCK_MONOTONIC_RAW, the clock `tsync sync` uses by
     default), writes "M <seq>" on tsync.mark, reads "<seq> <guest_ns>
     <boot_id>" and stamps the host clock again: the true host time of guest_ns
     lies in [before, after];
  3. session 'reset': `tsync sync --transport unix:SOCK` for --before-reset
     seconds, QMP system_reset, waits for the agent of the second boot, syncs
     --after-reset seconds more, SIGINT (done first, so that the second boot's
     guest times overlap the first's, as after any reboot of a guest that ran
     longer than it takes to boot);
  4. session 'pause': syncs --before seconds, QMP stop for --pause seconds, QMP
     cont, syncs --after seconds more, SIGINT;
  5. corrects every mark's guest time with its session's
     `tsync correct --model PREFIX.vcpu0.model.json --bounds` and
     `--table PREFIX.vcpu0.csv` (with and without --bounds), and checks.

Checks (each printed PASS / FAIL with its numbers; report.json and marks.csv
in --out keep everything):
  today  - the guest booted and its agent answers; session 'pause' wrote a model
           and a table; every mark taken before the pause, inside the span of the
           samples taken before it, lies inside its --bounds; `correct --table`
           corrects them; the agent answers again after the reset.
  breaks - counted by default (the CMake option TSYNC_GUEST_EXPECT_BREAKS=ON);
           with --no-expect-breaks, TSYNC_GUEST_EXPECT_BREAKS=0 in the
           environment or the CMake option OFF they print "FAIL (not counted)".
           The pause and the reboot are reported as breaks
           in PREFIX.session.json (any list under a key "breaks", an entry
           holding a host or guest time near the event), none elsewhere, and on
           stderr; every mark of both sessions lies inside --model --bounds, or
           is reported unknown (an exit status other than 0 and 1); after the
           reset `correct` gets `--segment BOOT` when its --help offers it;
           `correct --table --bounds` works and holds; the reset session's table
           is usable by `correct --table`.

Exit status: 0 pass, 1 fail, 77 skip (QEMU missing, guest not prepared, boot
failed); the reason is printed.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)


def log(msg):
    print(f"guest-test: {msg}", flush=True)


def skip(msg):
    log(f"SKIP: {msg}")
    sys.exit(SKIP)


class Qmp:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append((now_ns(), r))
                continue
            if "error" in r:
                raise RuntimeError(f"QMP {name}: {r['error']}")
            return r.get("return")


class Console:
    """Follows QEMU's serial log file; finds lines by pattern."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.lines = []  # (host_ns when seen, text)

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            return
        self.pos += cut + 1
        t = now_ns()
        for raw in data[: cut + 1].splitlines():
            self.lines.append((t, raw.decode("utf-8", "replace").rstrip("\r")))

    def wait_for(self, pattern, start_index, timeout, proc):
        """Wait for a line matching pattern at or after start_index; returns (index, t, match)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        i = start_index
        while time.monotonic() < end:
            self.poll()
            while i < len(self.lines):
                m = rx.search(self.lines[i][1])
                if m:
                    return i, self.lines[i][0], m
                i += 1
            if proc.poll() is not None:
                self.poll()
                return None
            time.sleep(0.05)
        return None


class Marker(threading.Thread):
    """Takes guest marks on the tsync.mark port until stopped."""

    def __init__(self, path, every):
        super().__init__(daemon=True)
        self.path = path
        self.every = every
        self.marks = []  # dicts: seq, before, after, guest, boot_id
        self.lost = 0
        self.stop_flag = threading.Event()
        self.seq = 0

    def run(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        buf = b""
        while not self.stop_flag.is_set():
            self.seq += 1
            seq = self.seq
            before = now_ns()
            s.sendall(f"M {seq}\n".encode())
            got = None
            deadline = time.monotonic() + 1.0
            while got is None and time.monotonic() < deadline and not self.stop_flag.is_set():
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    break
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    parts = line.decode(errors="replace").split()
                    # A stale answer (a request queued while the guest was stopped or
                    # rebooting) has an older seq: its bracket is not ours, drop it.
                    if len(parts) == 3 and parts[0] == str(seq):
                        got = (int(parts[1]), parts[2])
            after = now_ns()
            if got is None:
                self.lost += 1
            else:
                self.marks.append({"seq": seq, "before": before, "after": after, "guest": got[0], "boot_id": got[1]})
            self.stop_flag.wait(self.every)
        s.close()


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
        return True
    except OSError:
        return False


def run_correct(tsync, source_opt, source_file, queries, bounds):
    """One `tsync correct` call per (guest time, extra args): (status, host, lo, hi, stderr)."""
    out = []
    for g, extra in queries:
        cmd = [tsync, "correct", f"--{source_opt}", source_file, *extra] + (["--bounds"] if bounds else [])
        p = subprocess.run(cmd, input=f"{g}\n", capture_output=True, text=True)
        host = lo = hi = None
        if p.returncode == 0:
            fields = p.stdout.strip().split(",")
            try:
                host = int(fields[0])
                if bounds and len(fields) >= 3:
                    lo, hi = int(fields[1]), int(fields[2])
            except (ValueError, IndexError):
                pass
        out.append((p.returncode, host, lo, hi, p.stderr.strip()))
    return out


def fmt_ns(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3f} s"
    if a >= 1e6:
        return f"{v / 1e6:.3f} ms"
    if a >= 1e3:
        return f"{v / 1e3:.1f} us"
    return f"{v} ns"


def find_breaks(obj):
    """Every list under a key named 'breaks' anywhere in a JSON document."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "breaks" and isinstance(v, list):
                found.extend(v)
            else:
                found.extend(find_breaks(v))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(find_breaks(v))
    return found


def numbers_in(obj):
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [obj]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in numbers_in(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in numbers_in(v)]
    return []


class Checks:
    def __init__(self, expect_breaks):
        self.expect_breaks = expect_breaks
        self.results = []  # (group, name, ok, detail)

    def add(self, group, name, ok, detail):
        self.results.append((group, name, ok, detail))
        counted = group != "breaks" or self.expect_breaks
        status = "PASS" if ok else ("FAIL" if counted else "FAIL (not counted)")
        log(f"[{group}] {status}: {name}: {detail}")

    def failed(self, group):
        return [r for r in self.results if r[0] == group and not r[2]]


class Session:
    """One `tsync sync` run against the guest's agent."""

    def __init__(self, name, tsync, sock, out, interval, extra):
        self.name = name
        self.prefix = os.path.join(out, f"sync-{name}")
        self.cmd = [tsync, "sync", "--transport", f"unix:{sock}", "--duration", "3600s", "--interval", interval,
                    "--output", self.prefix, "--connect-timeout", "30s", *extra]
        self.stdout_path = self.prefix + ".stdout"
        self.stderr_path = self.prefix + ".stderr"
        self.proc = None
        self.start = self.end = None
        self.ended_by_itself = False
        self.rc = None

    def run(self):
        log(f"session '{self.name}': " + " ".join(self.cmd))
        self._o = open(self.stdout_path, "w")
        self._e = open(self.stderr_path, "w")
        self.start = now_ns()
        self.proc = subprocess.Popen(self.cmd, stdout=self._o, stderr=self._e)

    def sleep(self, sec):
        """Sleep sec seconds; False when the session ended meanwhile."""
        end = time.monotonic() + sec
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                time.sleep(max(0.0, end - time.monotonic()))
                return False
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return True

    def finish(self, checks):
        self.ended_by_itself = self.proc.poll() is not None
        if not self.ended_by_itself:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            checks.add("today", f"session '{self.name}' ends on SIGINT", False, "still running 60 s after; killed")
        self.end = now_ns()
        self.rc = self.proc.returncode
        self._o.close()
        self._e.close()
        self.stdout = open(self.stdout_path).read()
        self.stderr = open(self.stderr_path).read()
        log(f"session '{self.name}' exited {self.rc} ({'by itself' if self.ended_by_itself else 'on SIGINT'}) "
            f"after {(self.end - self.start) / 1e9:.1f} s")
        for line in self.stdout.splitlines()[-2:]:
            log(f"  stdout: {line}")
        for line in self.stderr.splitlines()[-6:]:
            log(f"  stderr: {line}")

    def load(self):
        self.model = self.prefix + ".vcpu0.model.json"
        self.table = self.prefix + ".vcpu0.csv"
        self.have_model = os.path.exists(self.model)
        self.have_table = os.path.exists(self.table)
        self.summary = None
        self.sample_times = []
        try:
            self.summary = json.load(open(self.prefix + ".session.json"))
            self.sample_times = [smp["time"] for v in self.summary.get("vcpus", []) for smp in v.get("samples", [])]
        except (OSError, ValueError, KeyError, TypeError) as e:
            log(f"session '{self.name}': {self.prefix}.session.json unreadable: {e}")
        self.breaks = find_breaks(self.summary) if self.summary is not None else []
        log(f"session '{self.name}': breaks reported: {json.dumps(self.breaks)[:400]}")


def err_of(host, mk):
    """Distance of a point estimate from the mark's truth interval (0 inside)."""
    if host is None:
        return None
    if host < mk["before"]:
        return host - mk["before"]
    if host > mk["after"]:
        return host - mk["after"]
    return 0


def bounds_hold(r, mk):
    """True / False when correct gave an interval; None when it gave none."""
    st, _, lo, hi, _ = r
    if st != 0 or lo is None:
        return None
    return lo <= mk["after"] and hi >= mk["before"]


def correct_marks(tsync, sess, marks, segment_of):
    """Corrects every mark with the session's model (--bounds) and table (plain and --bounds)."""
    q = [(mk["guest"], segment_of(mk)) for mk in marks]
    if sess.have_model:
        for mk, r in zip(marks, run_correct(tsync, "model", sess.model, q, True)):
            mk["model"] = r
    if sess.have_table:
        for mk, r in zip(marks, run_correct(tsync, "table", sess.table, q, False)):
            mk["table"] = r
        for mk, r in zip(marks, run_correct(tsync, "table", sess.table, q, True)):
            mk["table_bounds"] = r


def phase_stats(sess, marks, phases):
    stats = {}
    for ph in phases:
        ms = [mk for mk in marks if mk["phase"] == ph]
        if not ms:
            continue
        d = {"marks": len(ms)}
        if sess.have_model:
            ok = [mk for mk in ms if mk["model"][0] == 0]
            errs = [abs(err_of(mk["model"][1], mk)) for mk in ok if mk["model"][1] is not None]
            widths = sorted(mk["model"][3] - mk["model"][2] for mk in ok if mk["model"][2] is not None)
            viol = [mk for mk in ms if bounds_hold(mk["model"], mk) is False]
            d.update(model_failed=len(ms) - len(ok), model_bounds_exclude_truth=len(viol),
                     model_max_abs_err_ns=max(errs, default=None),
                     model_median_bounds_width_ns=widths[len(widths) // 2] if widths else None)
            if viol:
                w = max(viol, key=lambda mk: abs(err_of(mk["model"][1], mk) or 0))
                d["worst"] = {"guest": w["guest"], "truth": [w["before"], w["after"]],
                              "bounds": [w["model"][2], w["model"][3]], "estimate": w["model"][1],
                              "error_ns": err_of(w["model"][1], w)}
        if sess.have_table:
            ok = [mk for mk in ms if mk["table"][0] == 0]
            errs = [abs(err_of(mk["table"][1], mk)) for mk in ok if mk["table"][1] is not None]
            d.update(table_failed=len(ms) - len(ok), table_max_abs_err_ns=max(errs, default=None),
                     table_bounds_failed=sum(1 for mk in ms if mk["table_bounds"][0] != 0))
        stats[ph] = d
        log(f"session '{sess.name}', phase '{ph}': {len(ms)} marks; model: {d.get('model_failed')} failed, "
            f"{d.get('model_bounds_exclude_truth')} with bounds excluding the truth, max |error| "
            f"{fmt_ns(d.get('model_max_abs_err_ns'))}, median bounds width "
            f"{fmt_ns(d.get('model_median_bounds_width_ns'))}; table: {d.get('table_failed')} failed, max |error| "
            f"{fmt_ns(d.get('table_max_abs_err_ns'))}, --bounds failed on {d.get('table_bounds_failed')}")
        if "worst" in d:
            w = d["worst"]
            log(f"  worst: guest {w['guest']}: truth [{w['truth'][0]}, {w['truth'][1]}], bounds "
                f"[{w['bounds'][0]}, {w['bounds'][1]}], estimate {w['estimate']} (off by {fmt_ns(w['error_ns'])})")
    return stats


def near(br, host_lo, host_hi, guest_lo, guest_hi):
    for v in numbers_in(br):
        if host_lo is not None and host_lo <= v <= host_hi:
            return True
        if guest_lo is not None and guest_lo <= v <= guest_hi:
            return True
    return False


def all_marks_check(checks, sess, marks, what):
    """Every mark inside --model --bounds, or an honest 'unknown' (exit status not 0 or 1)."""
    if not sess.have_model:
        checks.add("breaks", f"every mark {what} lies inside --model --bounds", False, "no model")
        return
    bad, unknown = [], 0
    for mk in marks:
        st = mk["model"][0]
        h = bounds_hold(mk["model"], mk)
        if h is True:
            continue
        if h is None and st not in (0, 1):
            unknown += 1
            continue
        bad.append(mk)
    first = ""
    if bad:
        b = bad[0]
        first = (f"; first: phase '{b['phase']}' guest {b['guest']} truth [{b['before']}, {b['after']}] got "
                 f"status {b['model'][0]} host {b['model'][1]} [{b['model'][2]}, {b['model'][3]}] "
                 f"{b['model'][4][:120]!r}")
    checks.add("breaks", f"every mark {what} lies inside --model --bounds (or is 'unknown')", not bad,
               f"{len(marks)} marks, {len(bad)} outside or failed, {unknown} unknown{first}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True, help="guest cache dir of make_guest.sh")
    ap.add_argument("--tsync", required=True, help="host tsync binary (sync, correct)")
    ap.add_argument("--out", help="directory for outputs (default: a new temporary one, kept)")
    ap.add_argument("--prepare", metavar="MAKE_GUEST", help="run this make_guest.sh --cache CACHE first")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--before", type=float, default=12.0, help="seconds of session 'pause' before the pause")
    ap.add_argument("--pause", type=float, default=3.0, help="seconds the guest stays stopped")
    ap.add_argument("--after", type=float, default=8.0, help="seconds of session 'pause' after the pause")
    ap.add_argument("--no-reset", action="store_true", help="skip session 'reset'")
    ap.add_argument("--before-reset", type=float, default=4.0, help="seconds of session 'reset' before the reset")
    ap.add_argument("--after-reset", type=float, default=8.0, help="seconds of session 'reset' after the agent is back")
    ap.add_argument("--interval", default="500ms", help="tsync sync --interval")
    ap.add_argument("--mark-every", type=float, default=0.25, help="seconds between guest marks")
    ap.add_argument("--boot-timeout", type=float, default=120.0)
    ap.add_argument("--expect-breaks", action="store_true",
                    default=os.environ.get("TSYNC_GUEST_EXPECT_BREAKS", "1") != "0",
                    help="make the break checks count (the default; TSYNC_GUEST_EXPECT_BREAKS=0 or "
                         "--no-expect-breaks turns them into reports)")
    ap.add_argument("--no-expect-breaks", dest="expect_breaks", action="store_false",
                    help="print the break checks without counting them")
    ap.add_argument("--sync-arg", action="append", default=[], help="extra argument for tsync sync (repeatable)")
    a = ap.parse_args()

    t_start = time.monotonic()
    if shutil.which(a.qemu) is None:
        skip(f"{a.qemu} not found (Debian: apt-get install qemu-system-x86)")
    if a.prepare:
        t0 = time.monotonic()
        p = subprocess.run([a.prepare, "--cache", a.cache])
        if p.returncode == SKIP:
            skip("the guest cannot be prepared here (see make_guest.sh above)")
        if p.returncode != 0:
            log(f"FAIL: {a.prepare} exited {p.returncode}")
            return 1
        log(f"guest prepared in {time.monotonic() - t0:.1f} s")
    kernel = os.path.join(a.cache, "vmlinuz")
    initrd = os.path.join(a.cache, "initramfs.cpio.gz")
    for f in (kernel, initrd):
        if not os.path.exists(f):
            skip(f"{f} missing: run tests/guest/make_guest.sh --cache {a.cache}")
    if not os.access(a.tsync, os.X_OK):
        log(f"FAIL: host tsync {a.tsync} is not executable")
        return 1

    out = os.path.abspath(a.out or tempfile.mkdtemp(prefix="tsync-guest-"))
    os.makedirs(out, exist_ok=True)
    sock_dir = tempfile.mkdtemp(prefix="tsg-", dir="/tmp")  # Unix socket paths are short
    s_agent = os.path.join(sock_dir, "agent.sock")
    s_mark = os.path.join(sock_dir, "mark.sock")
    s_qmp = os.path.join(sock_dir, "qmp.sock")
    console_log = os.path.join(out, "console.log")
    if os.path.exists(console_log):
        os.unlink(console_log)
    accel = ["-accel", "kvm", "-accel", "tcg"] if kvm_usable() else ["-accel", "tcg"]
    qemu_cmd = [
        a.qemu, "-machine", "q35", *accel, "-cpu", "qemu64", "-m", "256", "-smp", "1",
        "-display", "none", "-nodefaults", "-no-user-config",
        "-serial", f"file:{console_log}",
        "-kernel", kernel, "-initrd", initrd,
        "-append", "console=ttyS0 quiet panic=-1",
        "-qmp", f"unix:{s_qmp},server=on,wait=off",
        "-device", "virtio-serial",
        "-chardev", f"socket,id=c0,path={s_agent},server=on,wait=off",
        "-device", "virtserialport,chardev=c0,name=tsync.0",
        "-chardev", f"socket,id=c1,path={s_mark},server=on,wait=off",
        "-device", "virtserialport,chardev=c1,name=tsync.mark",
    ]
    log(f"outputs in {out}")
    log("qemu: " + " ".join(qemu_cmd))
    qemu_err_path = os.path.join(out, "qemu.stderr")
    qemu_err = open(qemu_err_path, "w")
    t_spawn = now_ns()
    qemu = subprocess.Popen(qemu_cmd, stdin=subprocess.DEVNULL, stdout=qemu_err, stderr=qemu_err)
    console = Console(console_log)
    checks = Checks(a.expect_breaks)
    events = {}  # name -> (host ns before the command, host ns after its reply)
    sessions = []
    marker = None
    boot2_s = None
    try:
        r = console.wait_for(r"tsync-guest: ready port=(\S+) mark=(\S+) boot_id=(\S+) clocksource=(\S*)", 0,
                             a.boot_timeout, qemu)
        if r is None:
            qemu.kill()
            qemu.wait()
            qemu_err.flush()
            tail = "\n".join(x[1] for x in console.lines[-15:])
            err = open(qemu_err_path).read().strip()
            skip(f"QEMU did not boot the guest within {a.boot_timeout:.0f} s (exit {qemu.returncode}); "
                 f"qemu stderr: {err[-500:]!r}; console tail:\n{tail}")
        ready_idx, t_ready, m = r
        boot_s = (t_ready - t_spawn) / 1e9
        log(f"guest ready after {boot_s:.1f} s: port {m.group(1)}, mark port {m.group(2)}, "
            f"clocksource {m.group(4)}, accel {accel[1]}")
        if m.group(1) == "none" or m.group(2) == "none":
            checks.add("today", "the guest found its virtio-serial ports", False, m.group(0))
            return 1
        qmp = Qmp(s_qmp)
        marker = Marker(s_mark, a.mark_every)
        marker.start()

        # Session 'reset' first, while the guest's uptime is short: the second
        # boot's guest times then overlap the first's, as after any real reboot.
        # Session 'reset': sync, reset the guest, let the agent come back, sync on.
        if not a.no_reset:
            sb = Session("reset", a.tsync, s_agent, out, a.interval, a.sync_arg)
            sessions.append(sb)
            sb.run()
            sb.sleep(a.before_reset)
            b = now_ns()
            qmp.cmd("system_reset")
            events["reset"] = (b, now_ns())
            r2 = console.wait_for(r"tsync-guest: ready .*boot_id=(\S+)", ready_idx + 1, a.boot_timeout, qemu)
            if r2 is not None:
                ready_idx = r2[0]
            if r2 is None:
                checks.add("today", "the guest comes back after system_reset", False,
                           f"no second ready line within {a.boot_timeout:.0f} s")
            else:
                boot2_s = (r2[1] - events["reset"][1]) / 1e9
                events["ready2"] = (r2[1], r2[1])
                log(f"guest back after the reset in {boot2_s:.1f} s (boot_id {r2[2].group(1)})")
                sb.sleep(a.after_reset)
            sb.finish(checks)
        # Session 'pause': sync, stop the guest, continue it, sync on.
        sa = Session("pause", a.tsync, s_agent, out, a.interval, a.sync_arg)
        sessions.append(sa)
        sa.run()
        sa.sleep(a.before)
        b = now_ns()
        qmp.cmd("stop")
        events["stop"] = (b, now_ns())
        time.sleep(a.pause)
        b = now_ns()
        qmp.cmd("cont")
        events["cont"] = (b, now_ns())
        log(f"stopped the guest for {(events['cont'][0] - events['stop'][1]) / 1e9:.3f} s")
        sa.sleep(a.after)
        sa.finish(checks)

        marker.stop_flag.set()
        marker.join(timeout=5)
        try:
            qmp.cmd("quit")
        except (OSError, ConnectionError, RuntimeError):
            pass
        try:
            qemu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
        console.poll()
    finally:
        for s in sessions:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.kill()
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
        shutil.rmtree(sock_dir, ignore_errors=True)

    # ------------------------------------------------------------ analysis
    marks = marker.marks
    boot_ids = []
    for mk in marks:
        if mk["boot_id"] not in boot_ids:
            boot_ids.append(mk["boot_id"])
        mk["boot"] = boot_ids.index(mk["boot_id"])
    widths = sorted(mk["after"] - mk["before"] for mk in marks)
    log(f"{len(marks)} marks ({marker.lost} unanswered), {len(boot_ids)} boot(s); mark bracket width: median "
        f"{fmt_ns(widths[len(widths) // 2] if widths else None)}, max {fmt_ns(widths[-1] if widths else None)}")
    stop_b, stop_a = events["stop"]
    cont_b, cont_a = events["cont"]
    reset_b = events.get("reset", (None, None))[0]
    ready2 = events.get("ready2", (None, None))[0]
    report_phases = {}

    # ---- session 'pause'
    sa.load()
    ma = [mk for mk in marks if sa.start <= mk["before"] and mk["after"] <= sa.end]
    for mk in ma:
        mk["session"] = sa.name
        mk["phase"] = ("before pause" if mk["after"] < stop_b else "around pause" if mk["before"] < cont_a
                       else "after pause")
    correct_marks(a.tsync, sa, ma, lambda mk: [])
    pre = [mk for mk in ma if mk["phase"] == "before pause"]
    post = [mk for mk in ma if mk["phase"] == "after pause"]
    if pre and post:
        def gh(mk):
            return (mk["before"] + mk["after"]) // 2 - mk["guest"]
        log(f"truth: the pause moved host - guest by {fmt_ns(gh(post[0]) - gh(pre[-1]))} (guest stopped "
            f"{fmt_ns(cont_b - stop_a)}..{fmt_ns(cont_a - stop_b)})")
    report_phases[sa.name] = phase_stats(sa, ma, ["before pause", "around pause", "after pause"])

    checks.add("today", "the guest booted and its static tsync agent answers", len(sa.sample_times) > 0,
               f"boot {boot_s:.1f} s, {len(sa.sample_times)} samples in session 'pause'")
    checks.add("today", "session 'pause' wrote a model and a table", sa.have_model and sa.have_table,
               f"model {sa.have_model}, table {sa.have_table}, exit {sa.rc}")
    # Marks between the last sample before the pause and the pause itself are
    # interpolated across the pause until breaks are detected: today's check
    # covers the marks inside the span of the samples taken before the pause,
    # less the last second (a series running when the guest stopped is not
    # "before the pause": with --interval 500ms a series starts and ends
    # within a second).
    g_stop = pre[-1]["guest"] if pre else None
    pre_samples = [t for t in sa.sample_times if g_stop is not None and t <= g_stop - 1_000_000_000]
    span = (min(pre_samples), max(pre_samples)) if pre_samples else (0, -1)
    pre_in = [mk for mk in pre if span[0] <= mk["guest"] <= span[1]]
    log(f"session 'pause': {len(pre_samples)} samples before the pause; {len(pre) - len(pre_in)} marks before the "
        "pause lie outside their span (checked only with the break checks)")
    if sa.have_model:
        bad = [mk for mk in pre_in if bounds_hold(mk["model"], mk) is not True]
        checks.add("today", "every mark before the pause (inside the span of the samples before it) lies inside --model --bounds",
                   len(pre_in) > 0 and not bad,
                   f"{len(pre_in)} marks checked, {len(bad)} outside or failed" +
                   (f"; first: guest {bad[0]['guest']} truth [{bad[0]['before']}, {bad[0]['after']}] "
                    f"got {bad[0]['model'][:4]} {bad[0]['model'][4][:120]!r}" if bad else ""))
    if sa.have_table:
        bad = [mk for mk in pre_in if mk["table"][0] != 0]
        checks.add("today", "tsync correct --table corrects the marks before the pause", len(pre_in) > 0 and not bad,
                   f"{len(pre_in)} marks, {len(bad)} failed" + (f": {bad[0]['table'][4][:160]}" if bad else ""))

    # Breaks of session 'pause' (issue 10): the pause, and nothing else.
    g_lo = pre[-1]["guest"] - 2_000_000_000 if pre else None
    g_hi = post[0]["guest"] + 2_000_000_000 if post else None
    h_lo, h_hi = stop_b - 2_000_000_000, cont_a + 2_000_000_000
    at_pause = [br for br in sa.breaks if near(br, h_lo, h_hi, g_lo, g_hi)]
    checks.add("breaks", "session 'pause' reports the pause as a break at the right place (session.json 'breaks')",
               len(at_pause) >= 1,
               f"a break with a host time in [{h_lo}, {h_hi}] or a guest time in [{g_lo}, {g_hi}]; "
               f"{len(sa.breaks)} reported")
    checks.add("breaks", "session 'pause' reports no break away from the pause", len(at_pause) == len(sa.breaks),
               f"{len(sa.breaks) - len(at_pause)} elsewhere")
    checks.add("breaks", "session 'pause' says so on stderr",
               re.search(r"break|pause|step|discontinu", sa.stderr, re.I) is not None, f"stderr {sa.stderr[-200:]!r}")
    all_marks_check(checks, sa, ma, "of session 'pause' (before, around and after the pause)")
    if sa.have_table:
        bad = [mk for mk in ma if bounds_hold(mk["table_bounds"], mk) is not True and mk["table_bounds"][0] in (0, 1)]
        checks.add("breaks", "tsync correct --table --bounds works and holds on every mark of session 'pause'",
                   not bad, f"{len(bad)} of {len(ma)} failed or excluded the truth" +
                   (f": {bad[0]['table_bounds'][4][:160]!r}" if bad else ""))

    # ---- session 'reset'
    if not a.no_reset:
        sb.load()
        mb = [mk for mk in marks if sb.start <= mk["before"] and mk["after"] <= sb.end]
        for mk in mb:
            mk["session"] = sb.name
            mk["phase"] = ("before reset" if mk["after"] < reset_b else "around reset" if mk["boot"] == 0
                           else "after reset")
        # A segmented model needs to know which boot a guest time belongs to,
        # when the tool has a way to say it.
        help_text = subprocess.run([a.tsync, "correct", "--help"], capture_output=True, text=True).stdout
        has_segment = "--segment" in help_text
        correct_marks(a.tsync, sb, mb, lambda mk: ["--segment", str(mk["boot"])] if has_segment else [])
        report_phases[sb.name] = phase_stats(sb, mb, ["before reset", "around reset", "after reset"])
        after = [mk for mk in mb if mk["boot"] >= 1]
        checks.add("today", "the agent answers again after the reset (marks from the second boot)",
                   len(after) > 0, f"{len(after)} marks from boot 2")
        g2 = min((mk["guest"] for mk in after), default=None)
        at_reset = [br for br in sb.breaks
                    if near(br, reset_b - 2_000_000_000, (ready2 or reset_b) + 30_000_000_000,
                            1_000_000_000 if g2 is not None else None, (g2 or 0) + 30_000_000_000)]
        checks.add("breaks", "session 'reset' reports the reboot as a break (session.json 'breaks')",
                   len(at_reset) >= 1, f"{len(sb.breaks)} reported, {len(at_reset)} near the reset")
        checks.add("breaks", "session 'reset' says on stderr that the guest rebooted",
                   re.search(r"reboot|restart|boot", sb.stderr, re.I) is not None,
                   f"exit {sb.rc}, stderr {sb.stderr.strip()[-200:]!r}")
        all_marks_check(checks, sb, mb, "of session 'reset' (both boots" +
                        (", --segment BOOT)" if has_segment else "; correct has no --segment)"))
        if sb.have_table:
            bad = [mk for mk in mb if mk["table"][0] != 0]
            checks.add("breaks", "the tables of session 'reset' are usable (tsync correct --table)", not bad,
                       f"{len(bad)} of {len(mb)} failed" + (f": {bad[0]['table'][4][:160]!r}" if bad else ""))

    total_s = time.monotonic() - t_start
    load = open("/proc/loadavg").read().split()[:3]
    report = {"boot_s": boot_s, "reboot_s": boot2_s, "total_s": total_s, "loadavg": load, "accel": accel[1],
              "sessions": {s.name: {"exit": s.rc, "ended_by_itself": s.ended_by_itself, "breaks": s.breaks}
                           for s in sessions},
              "marks": len(marks), "marks_unanswered": marker.lost, "boots": len(boot_ids), "events": events,
              "phases": report_phases, "expect_breaks": a.expect_breaks,
              "checks": [{"group": g, "name": n, "ok": ok, "detail": d} for g, n, ok, d in checks.results]}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out, "marks.csv"), "w") as f:
        f.write("seq,session,boot,phase,host_before,host_after,guest,model_status,model_host,model_lo,model_hi,"
                "table_status,table_host\n")
        for mk in marks:
            mo = mk.get("model", (None,) * 5)
            ta = mk.get("table", (None,) * 5)
            f.write(f"{mk['seq']},{mk.get('session', '')},{mk['boot']},{mk.get('phase', '')},{mk['before']},"
                    f"{mk['after']},{mk['guest']},{mo[0]},{mo[1]},{mo[2]},{mo[3]},{ta[0]},{ta[1]}\n")
    log(f"boot {boot_s:.1f} s, reboot {'n/a' if boot2_s is None else f'{boot2_s:.1f} s'}, total {total_s:.1f} s, "
        f"load {' '.join(load)}; report {os.path.join(out, 'report.json')}")
    failed_today = checks.failed("today")
    failed_breaks = checks.failed("breaks")
    if failed_breaks and not a.expect_breaks:
        log(f"{len(failed_breaks)} break check(s) failed, not counted (--no-expect-breaks or "
            "TSYNC_GUEST_EXPECT_BREAKS=0)")
    if failed_today or (a.expect_breaks and failed_breaks):
        log(f"FAILED: {len(failed_today)} of today's checks" +
            (f", {len(failed_breaks)} break checks" if a.expect_breaks else ""))
        return 1
    log("PASSED" + (" (today's and the break checks)" if a.expect_breaks else
                    " (today's checks; the break checks are not counted)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
