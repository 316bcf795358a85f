#!/bin/bash
# Record a large host-only trace.dat for tsync_tracecmd_bench (root, tracefs, trace-cmd).
#
#   record_big.sh OUT.dat [SECONDS] [EVENTS...]
#
# Default: 10 s of "raw_syscalls sched irq timer workqueue" events while dd copies
# one byte per syscall and a shell loop makes context switches (about 100 MB of
# ring-buffer data per second on 2 CPUs), written uncompressed (--compression none: libtracecmd reads
# the ring-buffer pages in place). As tests/io/tracecmd/record_pair.sh does, a
# private mount namespace puts plain files over the function-tracer control files
# that some kernels refuse to trace-cmd, and an empty /proc/kallsyms.
set -u
OUT=${1:?usage: $0 OUT.dat [SECONDS] [EVENTS...]}
SECS=${2:-10}
shift $(( $# >= 2 ? 2 : $# ))
EV=("$@")
[ ${#EV[@]} -gt 0 ] || EV=(raw_syscalls sched irq timer workqueue)
ARGS=()
for e in "${EV[@]}"; do ARGS+=(-e "$e"); done
OUT=$(realpath -m "$OUT")
S=$(mktemp -d)
trap 'rm -rf "$S"' EXIT
export OUT SECS S
unshare -m --propagation private bash -c '
set -u
T=/sys/kernel/tracing
echo 1 > "$S/ftrace_enabled"; mount --bind "$S/ftrace_enabled" /proc/sys/kernel/ftrace_enabled || exit 90
for f in set_ftrace_filter set_ftrace_notrace set_ftrace_pid set_ftrace_notrace_pid \
         available_filter_functions available_filter_functions_addrs enabled_functions touched_functions; do
  [ -e "$T/$f" ] || continue
  : > "$S/$f"; mount --bind "$S/$f" "$T/$f" || exit 90
done
: > "$S/kallsyms"; mount --bind "$S/kallsyms" /proc/kallsyms || exit 90
trace-cmd record -o "$OUT" --compression none -b 20000 "$@" \
  sh -c "timeout $SECS dd if=/dev/zero of=/dev/null bs=1 2>/dev/null & end=\$((\$(date +%s) + $SECS)); while [ \$(date +%s) -lt \$end ]; do sleep 0.0005; done; wait"
' inner "${ARGS[@]}"
