#!/usr/bin/env bash
# Build the libFuzzer targets (clang, `fuzz` preset) and fuzz every reader for
# DURATION seconds in all (default 60), split between the targets: the wire
# protocol (`message`) gets a quarter, the others share the rest equally (at
# least 1 s each). Each starts from its seed corpus: tests/fuzz_corpus/<name>/
# plus, for the wire protocol, its stream framing and the trace-cmd decoders, the
# binary seeds written below. Exits non-zero when a fuzzer finds a crash, a leak
# or a hang.
#
#   ./scripts/fuzz.sh [DURATION] [TARGET...]
#
# Targets: message stream tracecmd table probes model scenario tsc_writes debugfs.
# TSYNC_FUZZ_INTEGER=1 builds them with clang's integer checks as well
# (-fsanitize=integer, the ignore list of the ubsan-int preset) in build/fuzz-int.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60}"
case "$duration" in ''|*[!0-9]*) echo "fuzz.sh: DURATION must be a whole number of seconds" >&2; exit 2 ;; esac
shift || true
all=(message stream tracecmd table probes model scenario tsc_writes debugfs)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${all[@]}")

# TSYNC_FUZZ_INTEGER=1: clang's integer checks too, in build/fuzz-int.
bdir=build/fuzz
if [ "${TSYNC_FUZZ_INTEGER:-0}" = 1 ]; then
  bdir=build/fuzz-int
  cmake --preset fuzz -B "$bdir" -DTSYNC_FUZZ_INTEGER=ON >/dev/null
else
  cmake --preset fuzz >/dev/null
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("tsync_fuzz_$t"); done
cmake --build "$bdir" -j2 --target "${build_targets[@]}"

# Binary seeds of the wire protocol (little-endian; see docs/protocol.md).
write_message_seeds() {
  local corpus="$1"
  seed() { printf "$2" > "$corpus/seed_$1"; }
  hdr() { echo -n 'TSYN\x02'"$1"'\x00\x00'"$2"'\x00\x00\x00'; }
  seed start     "$(hdr '\x01' '\x10')\x01\x00\x00\x00\x01\x00\x00\x00\x53\x01\x00\x00\x02\x00\x00\x00"
  seed start_ack "$(hdr '\x02' '\x08')\x01\x00\x00\x00\x01\x00\x00\x00"
  seed probe     "$(hdr '\x03' '\x08')\x01\x00\x00\x00\x05\x00\x00\x00"
  seed reply     "$(hdr '\x04' '\x10')\x01\x00\x00\x00\x05\x00\x00\x00\x10\x32\x54\x76\x98\xba\xdc\x0e"
  seed end       "$(hdr '\x05' '\x08')\x01\x00\x00\x00\x53\x01\x00\x00"
  seed end_ack   "$(hdr '\x06' '\x08')\x01\x00\x00\x00\x52\x01\x00\x00"
  printf 'TSYN\x02\x07\x01\x00\x20\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff' > "$corpus/seed_deferred"
  seed bye       "$(hdr '\x0a' '\x00')"
  printf 'TSYN\x02\x09\x00\x00\x0f\x00\x00\x00\x01\x00\x00\x00\x19\x00\x00\x00\x03\x00\x00\x00abc' > "$corpus/seed_error"
  # hello (version 2): initiator, ns, "mono_raw", no TSC rate, a boot id, a nonce;
  # and a responder's hello for x86-tsc at about 2.9 GHz.
  seed hello     "$(hdr '\x0b' '\x2c')\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x1d\xfe\xf1\x64\x0c\x6f\x40\xa2\xaf\x9e\x0e\x8d\x55\x32\x42\xc1\x08\x07\x06\x05\x04\x03\x02\x01mono_raw"
  seed hello_tsc "$(hdr '\x0b' '\x2b')\x01\x01\x07\x00\x00\x2b\x17\xad\x00\x00\x00\x00\x1d\xfe\xf1\x64\x0c\x6f\x40\xa2\xaf\x9e\x0e\x8d\x55\x32\x42\xc1\x01\x00\x00\x00\x00\x00\x00\x80x86-tsc"
  # What a version-1 peer sends first (answered in version 1).
  printf 'TSYN\x01\x01\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x53\x01\x00\x00\x02\x00\x00\x00' > "$corpus/seed_v1_start"
  # A series for the responder (fuzz/fuzz_message.cpp: 2-byte frame lengths).
  { printf '\x1c\x00'; cat "$corpus/seed_start"; printf '\x14\x00'; cat "$corpus/seed_probe";
    printf '\x14\x00'; cat "$corpus/seed_end"; printf '\x0c\x00'; cat "$corpus/seed_bye"; } > "$corpus/seed_series"
  # A series after a hello, as tsync's sync sends it.
  { printf '\x38\x00'; cat "$corpus/seed_hello"; printf '\x1c\x00'; cat "$corpus/seed_start"; printf '\x14\x00'; cat "$corpus/seed_probe";
    printf '\x14\x00'; cat "$corpus/seed_end"; printf '\x0c\x00'; cat "$corpus/seed_bye"; } > "$corpus/seed_hello_series"
  # A frame at the 64 KiB limit (length 0 means 65536).
  { printf '\x00\x00'; head -c 65536 /dev/zero; } > "$corpus/seed_max_frame"
}

# The stream framing (fuzz/fuzz_stream.cpp: 4-byte frame lengths).
write_stream_seeds() {
  local corpus="$1" m
  m=$(mktemp -d)
  write_message_seeds "$m"
  # A framed stream of two messages.
  { printf '\x14\x00\x00\x00'; cat "$m/seed_probe"; printf '\x0c\x00\x00\x00'; cat "$m/seed_bye"; } > "$corpus/seed_stream"
  # A frame at the 64 KiB limit, then a small one; and one byte over the limit.
  { printf '\x00\x00\x01\x00'; head -c 65536 /dev/zero; printf '\x0c\x00\x00\x00'; cat "$m/seed_bye"; } > "$corpus/seed_max_frame"
  printf '\x01\x00\x01\x00' > "$corpus/seed_oversized"
  rm -rf "$m"
}

# The trace-cmd option decoders. The first byte of an input picks the byte
# order (bit 0: big-endian); the rest is a TIME_SHIFT, TSC2NSEC, options list or
# trace.dat (see fuzz/fuzz_tracecmd.cpp).
write_tracecmd_seeds() {
  local c="$1"
  printf '\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00''\x10\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00\x00\x00\x00\x00''\xff\xff\xff\xff\xff\xff\xff\xff\x05\x00\x00\x00\x00\x00\x00\x00''\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00''\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$c/seed_time_shift_le"
  printf '\x01\x00\x00\x00\x00\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00\x02''\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x02\xff\xff\xff\xff\xff\xff\xff\xfe\x00\x00\x80\x00\x00\x00\x00\x00''\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x03\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x01' > "$c/seed_time_shift_be"
  printf '\x00\x99\x99\xaa\x2a\x1f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$c/seed_tsc2nsec"
  printf '\x00\x0e\x00\x10\x00\x00\x00\x99\x99\xaa\x2a\x1f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$c/seed_options"
  printf '\x17\x08\x44tracing7\x00\x00\x08\x00\x10\x00\x00none\x00\x00\x20\x00\x00\x00\x00\x00\x00\x00''\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00''\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$c/seed_dat_v7"
}

# Time per target: the wire decoder a quarter (when it runs), the rest shared.
n=${#targets[@]}
msg_share=0
for t in "${targets[@]}"; do [ "$t" = message ] && msg_share=$(( duration / 4 )); done
[ "$n" -gt 1 ] || msg_share=$duration
others=$(( n - (msg_share > 0 ? 1 : 0) ))
per=1
[ "$others" -gt 0 ] && per=$(( (duration - msg_share) / others ))
[ "$per" -ge 1 ] || per=1
[ "$msg_share" -ge 1 ] || msg_share=1
[ "$n" -gt 1 ] || per=$duration  # one target, whichever it is, gets all the time

for t in "${targets[@]}"; do
  bin=$bdir/fuzz/tsync_fuzz_$t
  work=$bdir/run_$t
  corpus="$work/corpus"
  mkdir -p "$corpus" "$work/artifacts"
  [ -d "tests/fuzz_corpus/$t" ] && cp -n tests/fuzz_corpus/$t/* "$corpus/" 2>/dev/null || true
  secs=$per
  max_len=65536
  case "$t" in
    message) write_message_seeds "$corpus"; secs=$msg_share; max_len=70000 ;;
    stream) write_stream_seeds "$corpus"; max_len=140000 ;;
    tracecmd) write_tracecmd_seeds "$corpus"; max_len=4096 ;;
    debugfs) max_len=64 ;;
  esac
  echo "=== tsync: fuzzing $t for ${secs}s"
  # The CPU time too: on a loaded machine inputs per CPU second compare, wall rates do not.
  timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "=== tsync: $t used %U s user + %S s system CPU")
  "${timer[@]}" "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$corpus"
done
