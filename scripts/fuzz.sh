#!/usr/bin/env bash
# Build the libFuzzer targets (clang, `fuzz` preset) and fuzz for DURATION
# seconds in all (default 60): two thirds on the probe wire decoder, one third
# on the trace-cmd option decoders, each from a small seed corpus of valid
# inputs. Exits non-zero when a fuzzer finds a crash, a leak or a hang.
#
#   ./scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60}"
case "$duration" in ''|*[!0-9]*) echo "fuzz.sh: DURATION must be a whole number of seconds" >&2; exit 2 ;; esac

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target tsync_fuzz_message tsync_fuzz_tracecmd

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

# Split the time: the wire decoder two thirds, the trace-cmd decoders the rest.
tc_duration=$(( duration / 3 ))
[ "$tc_duration" -ge 1 ] || tc_duration=1
msg_duration=$(( duration - tc_duration ))
[ "$msg_duration" -ge 1 ] || msg_duration=1

echo "=== tsync: fuzzing the wire decoder for ${msg_duration}s"
"$bin" -max_total_time="$msg_duration" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$corpus"

# The trace-cmd option decoders. The first byte of an input picks the byte
# order (bit 0: big-endian); the rest is a TIME_SHIFT, TSC2NSEC, options list or
# trace.dat (see fuzz/fuzz_tracecmd.cpp).
tc_bin=build/fuzz/fuzz/tsync_fuzz_tracecmd
tc_work=build/fuzz/run_tracecmd
tc_corpus="$tc_work/corpus"
mkdir -p "$tc_corpus" "$tc_work/artifacts"
# TIME_SHIFT, little-endian: 1 CPU, 2 samples, with fraction bits.
printf '\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00''\x10\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00\x00\x00\x00\x00''\xff\xff\xff\xff\xff\xff\xff\xff\x05\x00\x00\x00\x00\x00\x00\x00''\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00''\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$tc_corpus/seed_time_shift_le"
# TIME_SHIFT, big-endian: 2 CPUs, 1 sample each, no fraction bits.
printf '\x01\x00\x00\x00\x00\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00\x02''\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x02\xff\xff\xff\xff\xff\xff\xff\xfe\x00\x00\x80\x00\x00\x00\x00\x00''\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x03\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x01' > "$tc_corpus/seed_time_shift_be"
# TSC2NSEC, little-endian.
printf '\x00\x99\x99\xaa\x2a\x1f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$tc_corpus/seed_tsc2nsec"
# An options list: TSC2NSEC (id 14) then the v6 end marker.
printf '\x00\x0e\x00\x10\x00\x00\x00\x99\x99\xaa\x2a\x1f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$tc_corpus/seed_options"
# The start of a v7 trace.dat (magic, version, endianness, long size, page size, compression, options offset).
printf '\x17\x08\x44tracing7\x00\x00\x08\x00\x10\x00\x00none\x00\x00\x20\x00\x00\x00\x00\x00\x00\x00''\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00''\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$tc_corpus/seed_dat_v7"

echo "=== tsync: fuzzing the trace-cmd option decoders for ${tc_duration}s"
"$tc_bin" -max_total_time="$tc_duration" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -artifact_prefix="$tc_work/artifacts/" -print_final_stats=1 "$tc_corpus"
