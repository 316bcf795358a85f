// libFuzzer target: the trace-cmd option decoders and the trace.dat reader.
//
// Properties checked on every input (the first byte picks the byte order, the
// rest is the data):
// - no decoder crashes, reads out of bounds, or hangs;
// - a TIME_SHIFT or TSC2NSEC that decodes re-encodes to exactly the input
//   (the layouts are canonical), and a decoded TIME_SHIFT has at least one CPU
//   and at least one sample per CPU, with sorted times;
// - the conversion to sync tables and the options cursor, fed the same bytes,
//   end in a value or a named error;
// - the trace.dat reader, fed the same bytes, ends in a value or a named error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "tsync/io/tracecmd.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tsync::io;
  if (size == 0) return 0;
  const auto order = (data[0] & 1u) != 0 ? byte_order::big : byte_order::little;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 1), size - 1);

  if (auto ts = decode_time_shift(in, order)) {
    check(!ts->cpus.empty());
    for (const auto& v : ts->cpus) {
      check(!v.empty());
      for (std::size_t i = 1; i < v.size(); ++i) check(v[i - 1].time <= v[i].time);
    }
    auto again = encode_time_shift(*ts, order);
    check(again.has_value());
    check(again->size() == in.size());
    for (std::size_t i = 0; i < in.size(); ++i) check((*again)[i] == in[i]);
    for (std::size_t cpu = 0; cpu <= ts->cpus.size(); ++cpu) {
      auto t = to_sync_table(*ts, cpu);
      if (cpu == ts->cpus.size()) check(!t && t.error().code == tsync::errc::not_found);
      if (t) (void)t->correct(tsync::at_ns<tsync::guest>(0));
    }
  } else {
    check(!ts.error().message.empty());
  }

  if (auto t = decode_tsc2nsec(in, order)) {
    auto again = encode_tsc2nsec(*t, order);
    check(again.has_value());
    for (std::size_t i = 0; i < in.size(); ++i) check((*again)[i] == in[i]);
    (void)t->to_ns(~std::uint64_t{0});
  }

  for (auto f : {option_framing::v6, option_framing::v7}) {
    option_cursor c(in, order, f);
    for (std::size_t n = 0; n <= in.size(); ++n) {  // each option consumes >= 2 bytes
      auto v = c.next();
      if (!v || !*v) break;
      check((*v)->payload.size() <= in.size());
    }
    (void)read_sync_options(in, order, f);
  }

  (void)read_trace_dat(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
