#!/usr/bin/env bash
# Build the libFuzzer targets (clang, `fuzz` preset) and fuzz the probe wire
# decoder for DURATION seconds (default 60) from a small seed corpus of valid
# messages. Exits non-zero when the fuzzer finds a crash, a leak or a hang.
#
#   ./scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60}"
case "$duration" in ''|*[!0-9]*) echo "fuzz.sh: DURATION must be a whole number of seconds" >&2; exit 2 ;; esac

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target tsync_fuzz_message

bin=build/fuzz/fuzz/tsync_fuzz_message
work=build/fuzz/run
corpus="$work/corpus"
mkdir -p "$corpus" "$work/artifacts"

# Seed corpus: one valid message of each type (little-endian; see docs/protocol.md).
seed() { printf "$2" > "$corpus/seed_$1"; }
hdr() { echo -n 'TSYN\x01'"$1"'\x00\x00'"$2"'\x00\x00\x00'; }
seed start     "$(hdr '\x01' '\x10')\x01\x00\x00\x00\x01\x00\x00\x00\x53\x01\x00\x00\x02\x00\x00\x00"
seed start_ack "$(hdr '\x02' '\x08')\x01\x00\x00\x00\x01\x00\x00\x00"
seed probe     "$(hdr '\x03' '\x08')\x01\x00\x00\x00\x05\x00\x00\x00"
seed reply     "$(hdr '\x04' '\x10')\x01\x00\x00\x00\x05\x00\x00\x00\x10\x32\x54\x76\x98\xba\xdc\x0e"
seed end       "$(hdr '\x05' '\x08')\x01\x00\x00\x00\x53\x01\x00\x00"
seed end_ack   "$(hdr '\x06' '\x08')\x01\x00\x00\x00\x52\x01\x00\x00"
printf 'TSYN\x01\x07\x01\x00\x20\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff' > "$corpus/seed_deferred"
seed bye       "$(hdr '\x0a' '\x00')"
printf 'TSYN\x01\x09\x00\x00\x0f\x00\x00\x00\x01\x00\x00\x00\x19\x00\x00\x00\x03\x00\x00\x00abc' > "$corpus/seed_error"
# A framed stream of two messages.
{ printf '\x14\x00\x00\x00'; cat "$corpus/seed_probe"; printf '\x0c\x00\x00\x00'; cat "$corpus/seed_bye"; } > "$corpus/seed_stream"

echo "=== tsync: fuzzing the wire decoder for ${duration}s"
"$bin" -max_total_time="$duration" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$corpus"
