#!/usr/bin/env bash
# Re-run the hostile surfaces of issue 13 and print the closing table of
# docs/security.md (markdown): surface, inputs tried, crashes, hangs, silent
# wrong output.
#
#   ./scripts/hostile_table.sh [FUZZ_SECONDS] [BUILD_DIR]
#   PARTS=fuzz ./scripts/hostile_table.sh 60     # only the fuzz rows (or PARTS=ctest)
#
# FUZZ_SECONDS (default 60) is the time of EACH libFuzzer target (built by
# scripts/fuzz.sh in build/fuzz); BUILD_DIR (default build/dev) must hold the
# built tests: the cli, transport, probe and sync cases below are run with ctest.
# A crash is a fuzzer's crash/leak artifact or sanitizer report; a hang a
# fuzzer timeout (-timeout=10) or a ctest timeout; silent wrong output a
# fuzzer property check failing (they abort: counted under crashes too) or a
# ctest case failing its assertions. Prints the load before and after.
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
build="${2:-build/dev}"
case "$secs" in ''|*[!0-9]*) echo "hostile_table.sh: FUZZ_SECONDS must be a whole number" >&2; exit 2 ;; esac
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load before: $(uptime | sed 's/.*load average: //')"

rows=()
status=0
parts="${PARTS:-all}"
fuzz_targets=(message stream tracecmd table probes model scenario tsc_writes debugfs)
[ "$parts" = ctest ] && fuzz_targets=()
for t in "${fuzz_targets[@]}"; do
  art="build/fuzz/run_$t/artifacts"
  rm -rf "$art"
  ./scripts/fuzz.sh "$secs" "$t" > "$out/$t.log" 2>&1
  rc=$?
  execs=$(awk '/stat::number_of_executed_units/{n=$2} END{print n+0}' "$out/$t.log")
  rate=$(awk '/stat::average_exec_per_sec/{n=$2} END{print n+0}' "$out/$t.log")
  cpu=$(awk '/=== tsync: .* used/{print $5 + $9}' "$out/$t.log")
  per_cpu=$(awk -v n="$execs" -v c="${cpu:-0}" 'BEGIN{print (c > 0) ? int(n / c) : "?"}')
  crashes=$(find "$art" -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' 2>/dev/null | wc -l)
  hangs=$(find "$art" -name 'timeout-*' 2>/dev/null | wc -l)
  [ "$rc" -eq 0 ] || { [ "$crashes$hangs" != "00" ] || crashes=1; status=1; }
  rows+=("| fuzz \`$t\` (${secs} s) | $execs inputs ($rate/s wall, $per_cpu per CPU s) | $crashes | $hangs | $crashes |")
done

# ctest groups: name, regex, what the cases try (from their sources).
run_group() {
  local name="$1" regex="$2" tried="$3"
  ctest --test-dir "$build" -R "$regex" --timeout 300 > "$out/ctest.log" 2>&1
  local total failed timeouts
  total=$(grep -cE '^ *[0-9]+/[0-9]+ Test' "$out/ctest.log")
  failed=$(grep -cE '^ *[0-9]+/[0-9]+ Test .*(\*\*\*Failed|Exception|Not Run)' "$out/ctest.log")
  timeouts=$(grep -cE '^ *[0-9]+/[0-9]+ Test .*\*\*\*Timeout' "$out/ctest.log")
  [ "$((failed + timeouts))" -eq 0 ] || status=1
  rows+=("| $name ($total ctest cases) | $tried | $failed | $timeouts | $failed |")
}
if [ "$parts" != fuzz ]; then
run_group "hostile clients against the agent" \
  'agent: |server: |responder rejects garbage|listener replaces a stale' \
  "40,000 connect/close (agent) + 40,000 (server); 40 clients holding fds under prlimit 24 (EMFILE); 30 silent hybrid CONNECTs; 100 raw-garbage, 100 framed-garbage, 3 oversized-frame, 2 protocol-abuse, 50 half-frame connections, 8 slow drips during a sync; connection cap (5 over); kill -9 and restart"
run_group "hostile responders against sync" \
  'probe:.*(responder killed|stalls past|silent responder|truncated reply|oversized frame|garbage from the responder|duplicated replies|reordered reply|other series|end_ack claiming|deferred stamps beyond|refuses a series)|sync: a responder clock that goes backwards|refuse a series whose probes contradict' \
  "12 faulty responder modes (killed mid-series, stall, silence, truncated reply, oversized frame and payload, garbage, duplicates, reordering, foreign series/ids, lying end_ack, extra deferred stamps, refusal), a clock going backwards, contradicting probes for every estimator"
run_group "faults" \
  'writing to stdout fails|full disk|kill -9 mid-session|a write error names the file' \
  "/dev/full and a closed stdout for correct, --version and --help; sync on a full 64 KiB tmpfs (root); kill -9 of a 60 s sync after 1.5 s; a failing atomic write"
fi

echo "load after: $(uptime | sed 's/.*load average: //')"
echo
echo "| surface | inputs tried | crashes | hangs | silent wrong output |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$status"
