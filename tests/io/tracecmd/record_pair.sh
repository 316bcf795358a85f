#!/bin/bash
# Record a real trace-cmd host+guest pair on this one machine, for the tracecmd tests.
#
#   record_pair.sh OUT_DIR [NODELAY_PRELOAD_SO]
#
# The "guest" is `trace-cmd agent -N` on TCP loopback; the "host" is
# `trace-cmd record -A 127.0.0.1:PORT`, which also runs trace-cmd's PTP-like time
# sync with the agent. Both sides trace sched_switch with the mono_raw clock of the
# same kernel, so the true guest-to-host offset is 0. The host's events go to a
# tracefs instance (-B) so that they do not mix with the agent's top-level buffer.
#
# Writes into OUT_DIR (emptied first):
#   host.dat, guest.dat       the pair as recorded (trace.dat v7, trace-cmd's default compression)
#   host_v6.dat, guest_v6.dat the pair converted to v6 (`trace-cmd convert --file-version 6`)
#   guest_v7_none.dat         the guest converted to an uncompressed v7 file
#   local_v6.dat              a host-only recording made directly with `--file-version 6`
#                             (top-level buffer, uncompressed: about 5 MB, mostly kallsyms)
#   *.log                     trace-cmd's output; OK when everything above was written
# Exit 0 on success, 77 (ctest's SKIP_RETURN_CODE) with the reason on stdout and in
# OUT_DIR/SKIPPED when this machine cannot record (not root, no trace-cmd, no tracefs,
# no private mount namespace, trace-cmd fails), 1 on a usage error.
#
# Kernels that refuse the function-tracer control files (EPERM on
# /proc/sys/kernel/ftrace_enabled, set_ftrace_pid, ...) make trace-cmd record exit with
# "Can't enable ftrace". Inside a private mount namespace this script bind-mounts plain
# files over those control files, for the top-level tracefs directory and for the host
# instance (created here beforehand for that reason), so nothing outside the namespace
# changes except that instance and the clock_synch-* instances trace-cmd creates, which
# are removed at the end.
#
# Environment: TSYNC_TRACE_CMD (default: trace-cmd in PATH), TSYNC_REC_SECONDS (default 3),
# TSYNC_REC_NO_KALLSYMS=1 (trace-cmd then finds an empty /proc/kallsyms: files of a few
# tens of KB instead of a megabyte, as for the committed fixtures in data/),
# TSYNC_REC_EVENTS (events of both sides, default "sched:sched_switch"; e.g. "sched irq timer"
# for bigger files), TSYNC_REC_INTERVAL (trace-cmd's --tsync-interval in ms, default 100; 0 syncs only at
# the start and the end, as trace-cmd does by default).
set -u
OUT=${1:-}
PRELOAD=${2:-}
[ -n "$OUT" ] || { echo "usage: $0 OUT_DIR [NODELAY_PRELOAD_SO]" >&2; exit 1; }
TC=${TSYNC_TRACE_CMD:-$(command -v trace-cmd || true)}
SECS=${TSYNC_REC_SECONDS:-3}
TRACEFS=/sys/kernel/tracing
INST=tsync_test_host_$$

rm -rf "$OUT"
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)

skip() {
  echo "SKIPPED: $*" | tee "$OUT/SKIPPED"
  exit 77
}

[ "$(id -u)" -eq 0 ] || skip "recording needs root (tracefs, mount namespace); running as uid $(id -u)"
[ -n "$TC" ] && [ -x "$TC" ] || skip "trace-cmd not found (Debian package trace-cmd)"
command -v unshare >/dev/null || skip "unshare (util-linux) not found"
if [ ! -e "$TRACEFS/trace" ]; then
  mount -t tracefs nodev "$TRACEFS" 2>/dev/null || skip "no tracefs at $TRACEFS and it cannot be mounted"
fi
[ -w "$TRACEFS/trace" ] || skip "tracefs at $TRACEFS is not writable"
unshare -m --propagation private true 2>/dev/null || skip "cannot create a private mount namespace (unshare -m)"
if [ -n "$PRELOAD" ] && [ ! -r "$PRELOAD" ]; then
  echo "note: preload module $PRELOAD missing; recording without TCP_NODELAY (slow syncs)"
  PRELOAD=
fi
[ -z "$PRELOAD" ] || PRELOAD=$(cd "$(dirname "$PRELOAD")" && pwd)/$(basename "$PRELOAD")

# A free TCP port for the agent.
PORT=
for p in $(seq $((20000 + $$ % 20000)) $((20000 + $$ % 20000 + 50))); do
  if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then PORT=$p; break; fi
done
[ -n "$PORT" ] || skip "no free TCP port found for trace-cmd agent"

STANDINS=$(mktemp -d)
CREATED_INST=0
BEFORE_SYNC=$(ls -d "$TRACEFS"/instances/clock_synch-* 2>/dev/null)
cleanup() {
  if [ "$CREATED_INST" = 1 ]; then rmdir "$TRACEFS/instances/$INST" 2>/dev/null; fi
  for d in "$TRACEFS"/instances/clock_synch-*; do
    [ -d "$d" ] || continue
    case "
$BEFORE_SYNC
" in *"
$d
"*) ;; *) rmdir "$d" 2>/dev/null ;; esac
  done
  rm -rf "$STANDINS"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir "$TRACEFS/instances/$INST" 2>/dev/null && CREATED_INST=1 ||
  skip "cannot create the tracefs instance $INST"

# The part that runs inside the private mount namespace: cover the function-tracer
# control files, start the agent, record, stop the agent. $1 = stand-in directory.
INNER='
set -u
S=$1; shift
echo 1 > "$S/ftrace_enabled"
mount --bind "$S/ftrace_enabled" /proc/sys/kernel/ftrace_enabled || exit 90
for dir in "$TRACEFS" "$TRACEFS/instances/$INST"; do
  for f in set_ftrace_filter set_ftrace_notrace set_ftrace_pid set_ftrace_notrace_pid \
           available_filter_functions available_filter_functions_addrs enabled_functions touched_functions; do
    [ -e "$dir/$f" ] || continue
    stand="$S/$(echo "$dir/$f" | tr / _)"
    : > "$stand"
    mount --bind "$stand" "$dir/$f" || exit 90
  done
done
if [ "${TSYNC_REC_NO_KALLSYMS:-0}" = 1 ]; then
  : > "$S/kallsyms"
  mount --bind "$S/kallsyms" /proc/kallsyms || exit 90
fi
cd "$OUT"
LD_PRELOAD=$PRELOAD "$TC" agent -N 127.0.0.1 -p "$PORT" > agent.log 2>&1 &
agent=$!
for i in $(seq 100); do
  ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && break
  sleep 0.1
done
# The traced command makes a few thousand context switches per second.
LD_PRELOAD=$PRELOAD timeout 120 "$TC" record -o host.dat -C mono_raw --tsync-interval "$TSYNC_REC_INTERVAL" \
  -B "$INST" -C mono_raw $EVENTS \
  -A "127.0.0.1:$PORT" $EVENTS \
  sh -c "end=\$((\$(date +%s) + $SECS)); while [ \$(date +%s) -lt \$end ]; do sleep 0.001; done" > record.log 2>&1
rc=$?
kill "$agent" 2>/dev/null
wait "$agent" 2>/dev/null
[ $rc = 0 ] || exit 91
# A host-only recording written directly as v6, in the top-level buffer (the agent is
# gone): trace-cmd 3.1.6 fails to write a v6 file whose events are in a -B instance
# ("Cannot find description for buffer").
timeout 60 "$TC" record -o local_v6.dat --file-version 6 -C mono_raw -e sched:sched_switch \
  sleep 0.3 > record_v6.log 2>&1 || exit 92
exit 0
'
EVENTS=
for e in ${TSYNC_REC_EVENTS:-sched:sched_switch}; do EVENTS="$EVENTS -e $e"; done
export OUT TC PORT TRACEFS INST PRELOAD SECS EVENTS TSYNC_REC_NO_KALLSYMS=${TSYNC_REC_NO_KALLSYMS:-0} TSYNC_REC_INTERVAL=${TSYNC_REC_INTERVAL:-100}
PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN=(taskset -c 0,1); fi
"${PIN[@]}" unshare -m --propagation private bash -c "$INNER" inner "$STANDINS"
rc=$?
case $rc in
  0) ;;
  90) skip "cannot bind-mount stand-ins over the function-tracer control files" ;;
  91) skip "trace-cmd record -A failed: $(tail -n 3 "$OUT/record.log" 2>/dev/null | tr '\n' ' ')" ;;
  92) skip "trace-cmd record --file-version 6 failed: $(tail -n 3 "$OUT/record_v6.log" 2>/dev/null | tr '\n' ' ')" ;;
  *) skip "recording failed (exit $rc)" ;;
esac

# trace-cmd names the guest file after the agent's address.
mv "$OUT/host-127.0.0.1.dat" "$OUT/guest.dat" 2>/dev/null ||
  mv "$OUT"/*127.0.0.1*.dat "$OUT/guest.dat" 2>/dev/null ||
  skip "trace-cmd wrote no guest file: $(ls "$OUT" | tr '\n' ' ')"
[ -s "$OUT/host.dat" ] || skip "trace-cmd wrote no host file"

"$TC" convert --file-version 6 -i "$OUT/host.dat" -o "$OUT/host_v6.dat" > "$OUT/convert.log" 2>&1 &&
  "$TC" convert --file-version 6 -i "$OUT/guest.dat" -o "$OUT/guest_v6.dat" >> "$OUT/convert.log" 2>&1 &&
  "$TC" convert --file-version 7 --compression none -i "$OUT/guest.dat" -o "$OUT/guest_v7_none.dat" \
    >> "$OUT/convert.log" 2>&1 ||
  skip "trace-cmd convert failed: $(tail -n 3 "$OUT/convert.log" | tr '\n' ' ')"
touch "$OUT/OK"
echo "recorded in $OUT: $(cd "$OUT" && ls -s --block-size=K ./*.dat | tr '\n' ' ')"
exit 0
