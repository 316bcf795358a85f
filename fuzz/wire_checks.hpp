#pragma once
// Checks shared by the wire-protocol fuzz targets (fuzz_message.cpp,
// fuzz_stream.cpp): a failed property aborts, which libFuzzer reports as a crash.
#include <algorithm>
#include <cstdlib>
#include <span>
#include <variant>

#include "tsync/probe/message.hpp"

namespace tsync_fuzz {

inline void check(bool ok) {
  if (!ok) std::abort();
}

/// Whatever `in` decodes to re-encodes to exactly `in` (the codec is canonical)
/// and satisfies the documented limits.
inline void check_decoded(std::span<const std::byte> in) {
  using namespace tsync::probe;
  auto m = decode(in);
  if (!m) return;
  auto again = encode_to_vector(*m);
  check(again.has_value());
  check(again->size() == in.size() && std::equal(again->begin(), again->end(), in.begin()));
  if (const auto* d = std::get_if<deferred_msg>(&*m)) {
    check(d->entries.size() <= max_batch_entries);
    for (const auto& e : d->entries) check(e.probe_id < max_probes_per_series);
  }
  if (const auto* s = std::get_if<start_msg>(&*m)) check(s->probe_count >= 1 && s->probe_count <= max_probes_per_series);
  if (const auto* e = std::get_if<error_msg>(&*m)) check(e->reason.size() <= max_reason_length);
}

}  // namespace tsync_fuzz
