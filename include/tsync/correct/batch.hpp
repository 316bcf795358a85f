#pragma once
/// \file
/// Batch correction of a span of guest timestamps (in place or into an output
/// span), bit-identical to `sync_table::correct`.
///
/// The span is cut into blocks of `batch_block` events. When a whole block lies
/// in the fast range of one region (the common case for a per-CPU stream: a
/// region between two sync samples holds thousands of events), the block goes
/// through a branch-free loop over the region's fixed-point kernel written with
/// 32-bit partial products, which the compiler vectorises. A block that spans
/// several regions goes through the streaming cursor, event by event.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "tsync/core/error.hpp"
#include "tsync/correct/cursor.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::correct {

/// Outcome of a batch call.
struct batch_status {
  errc error = errc::ok;   ///< the first error, `errc::ok` when every event was corrected
  std::size_t index = 0;   ///< events `[0, index)` are written; on error, the failing event's index
  /// True when every event was corrected.
  [[nodiscard]] constexpr bool ok() const noexcept { return error == errc::ok; }
};

/// Block length of the batch path (events).
inline constexpr std::size_t batch_block = 512;

namespace detail {

// True when every p[i] lies in [lo, hi] (a vectorisable OR reduction).
inline bool all_within(const std::int64_t* p, std::size_t n, std::int64_t lo, std::int64_t hi) noexcept {
  unsigned outside = 0;
  for (std::size_t i = 0; i < n; ++i)
    outside |= static_cast<unsigned>(p[i] < lo) | static_cast<unsigned>(p[i] > hi);
  return outside == 0;
}

// The region kernel over a run (see region_kernel): the inner loops to vectorise.
// Short form: one high product, no correction.
inline void kernel_short_copy(const std::int64_t* __restrict in, std::int64_t* __restrict out, std::size_t n,
                              const region_kernel& k) noexcept {
  const std::uint64_t anchor = k.anchor, hbase = k.hbase, q = k.q, mc = k.mc;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t x = static_cast<std::uint64_t>(in[i]) - anchor;
    out[i] = static_cast<std::int64_t>(hbase + q * x + mulhi_u64_portable(mc, x));
  }
}
inline void kernel_short_inplace(std::int64_t* __restrict p, std::size_t n, const region_kernel& k) noexcept {
  const std::uint64_t anchor = k.anchor, hbase = k.hbase, q = k.q, mc = k.mc;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t x = static_cast<std::uint64_t>(p[i]) - anchor;
    p[i] = static_cast<std::int64_t>(hbase + q * x + mulhi_u64_portable(mc, x));
  }
}
inline void kernel_copy(const std::int64_t* __restrict in, std::int64_t* __restrict out, std::size_t n,
                        const region_kernel& k) noexcept {
  const std::uint64_t anchor = k.anchor, hbase = k.hbase, q = k.q, r = k.r, den = k.den, m = k.m;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t x = static_cast<std::uint64_t>(in[i]) - anchor;
    std::uint64_t e = mulhi_u64_portable(m, x);
    e += static_cast<std::uint64_t>((r * x - e * den) >= den);
    out[i] = static_cast<std::int64_t>(hbase + q * x + e);
  }
}
inline void kernel_inplace(std::int64_t* __restrict p, std::size_t n, const region_kernel& k) noexcept {
  const std::uint64_t anchor = k.anchor, hbase = k.hbase, q = k.q, r = k.r, den = k.den, m = k.m;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t x = static_cast<std::uint64_t>(p[i]) - anchor;
    std::uint64_t e = mulhi_u64_portable(m, x);
    e += static_cast<std::uint64_t>((r * x - e * den) >= den);
    p[i] = static_cast<std::int64_t>(hbase + q * x + e);
  }
}

template <bool InPlace>
batch_status run_batch(const sync_table& table, const std::int64_t* in, std::int64_t* out, std::size_t n) noexcept {
  cursor c(table);
  std::size_t i = 0;
  while (i < n) {
    const region_kernel& k = c.kernel();
    if (!k.contains(in[i])) {
      auto r = c.correct(in[i]);
      if (!r) return {r.error(), i};
      out[i] = *r;
      ++i;
      continue;
    }
    const std::size_t end = std::min(n, i + batch_block);
    // Whole block in this region (checked on its last event first, which is
    // what fails for an in-order stream leaving the region): vector kernel.
    if (k.contains(in[end - 1]) && all_within(in + i, end - i, k.lo, k.hi)) {
      if constexpr (InPlace) {
        if (k.short_form) kernel_short_inplace(out + i, end - i, k);
        else kernel_inplace(out + i, end - i, k);
      } else {
        if (k.short_form) kernel_short_copy(in + i, out + i, end - i, k);
        else kernel_copy(in + i, out + i, end - i, k);
      }
      i = end;
      continue;
    }
    // Otherwise the block goes event by event through the cursor.
    for (; i < end; ++i) {
      const auto r = c.correct(in[i]);
      if (!r) return {r.error(), i};
      out[i] = *r;
    }
  }
  return {errc::ok, n};
}

}  // namespace detail

/// Correct `inout` in place (guest → host). On error, `inout[0, index)` hold
/// host times and the rest are untouched guest times.
[[nodiscard]] inline batch_status correct_batch(const sync_table& table, std::span<std::int64_t> inout) noexcept {
  return detail::run_batch<true>(table, inout.data(), inout.data(), inout.size());
}

/// Correct `in` into `out` (guest → host). `out` must be at least as long as
/// `in` and must not partly overlap it (`errc::invalid_argument`, index 0);
/// `out.data() == in.data()` is the in-place case.
[[nodiscard]] inline batch_status correct_batch(const sync_table& table, std::span<const std::int64_t> in,
                                                std::span<std::int64_t> out) noexcept {
  if (out.size() < in.size()) return {errc::invalid_argument, 0};
  if (in.empty()) return {errc::ok, 0};
  if (static_cast<const void*>(in.data()) == static_cast<const void*>(out.data()))
    return detail::run_batch<true>(table, out.data(), out.data(), in.size());
  const std::less<const std::int64_t*> lt;
  const bool disjoint = !lt(in.data(), out.data() + in.size()) || !lt(out.data(), in.data() + in.size());
  if (!disjoint) return {errc::invalid_argument, 0};
  return detail::run_batch<false>(table, in.data(), out.data(), in.size());
}

}  // namespace tsync::correct
