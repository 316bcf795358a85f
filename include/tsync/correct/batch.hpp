#pragma once
/// \file
/// Batch correction of a span of guest timestamps (in place or into an output
/// span), bit-identical to `sync_table::correct`.
///
/// The span is cut into blocks of `batch_block` events. When a whole block lies
/// in the fast range of one region (the common case for a per-CPU stream: a
/// region between two sync samples holds thousands of events), the block goes
/// through one of the region's exact formulas (the cursor's 64-bit kernel when
/// it covers the block, else the region kernel's short or long form) in an
/// AVX-512, AVX2 or baseline copy chosen once at run time
/// (`tsync/detail/correct_kernels.hpp`), whatever the compiler flags. A block
/// that spans several regions goes event by event through the cursor's
/// kernels, inline, and moves to the next region inline too (no out-of-line
/// call per region change, unlike the cursor's slow path).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "tsync/core/error.hpp"
#include "tsync/correct/cursor.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/detail/correct_kernels.hpp"
#include "tsync/detail/simd.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::correct {

/// Deprecated (one release): batch calls return `expected<void, index_error>`
/// (the error's `index` is the failing event's; events before it are written).
struct [[deprecated("batch calls return expected<void, index_error>")]] batch_status {
  errc error = errc::ok;   ///< the first error, `errc::ok` when every event was corrected
  std::size_t index = 0;   ///< events `[0, index)` are written; on error, the failing event's index
  /// True when every event was corrected.
  [[nodiscard]] constexpr bool ok() const noexcept { return error == errc::ok; }
};

/// Block length of the batch path (events).
inline constexpr std::size_t batch_block = 512;

namespace detail {

inline tsync::detail::region_words block_words(const region_kernel& k) noexcept {
  return {k.anchor, k.hbase, k.q, k.r, k.den, k.m, k.mc, k.m64, k.sh64,
          static_cast<std::uint64_t>(k.lo), static_cast<std::uint64_t>(k.hi) - static_cast<std::uint64_t>(k.lo),
          k.len64, k.short_form};
}

/// Events [i, end) of region kernel `k`'s fast range, event by event with the
/// cursor's kernels inline (its 64-bit kernel where it covers the event, else
/// the region's exact formula); stops at the first event outside the fast
/// range. Returns where it stopped.
[[gnu::always_inline]] inline std::size_t region_events(const region_kernel& k, const std::int64_t* in,
                                                        std::int64_t* out, std::size_t i, std::size_t end) noexcept {
  const std::uint64_t anchor = k.anchor, len64 = k.len64, m64 = k.m64, hbase = k.hbase;
  const unsigned sh = k.sh64;
  for (; i < end; ++i) {
    const std::int64_t t = in[i];
    const std::uint64_t x = static_cast<std::uint64_t>(t) - anchor;
    if (x < len64) [[likely]] {
      out[i] = static_cast<std::int64_t>(hbase + x +
                                         static_cast<std::uint64_t>(static_cast<std::int64_t>(m64 * x) >> sh));
      continue;
    }
    if (!k.contains(t)) break;
    out[i] = k.short_form ? k.apply_short(t) : k.apply(t);
  }
  return i;
}

// InPlace: in == out (the kernels load each vector before storing it).
template <bool InPlace>
expected<void, index_error> run_batch(const sync_table& table, const std::int64_t* in, std::int64_t* out, std::size_t n,
                       tsync::detail::isa which) noexcept {
  if (n == 0) return {};
  const std::size_t regions = table.regions();
  std::size_t reg = table.region_of(in[0]);
  std::size_t i = 0;
  while (i < n) {
    const std::int64_t t = in[i];
    if (!table.kernel(reg).contains(t)) {
      // Another region: the next one inline (an in-order stream), else a search.
      if (t > table.region_last(reg) && reg + 1 < regions && t <= table.region_last(reg + 1)) ++reg;
      else reg = table.region_of(t);
      if (!table.kernel(reg).contains(t)) {
        // No fast range for t (extrapolation, scaled steps, int64 limits): the exact formula.
        const auto r = table.correct_in_region(reg, t);
        if (!r) return unexpected(index_error{r.error(), i});
        out[i++] = *r;
        continue;
      }
    }
    const region_kernel& k = table.kernel(reg);
    const std::size_t end = std::min(n, i + batch_block);
    // Whole block in this region (checked on its last event first, which is
    // what fails for an in-order stream leaving the region): a block kernel.
    if (k.contains(in[end - 1]) && tsync::detail::region_block(which, in + i, out + i, end - i, block_words(k))) {
      i = end;
      continue;
    }
    // Otherwise event by event to the end of the block, moving on to the next
    // region's kernel inline while the events stay in the fast ranges (dense
    // tables: a few events per region).
    const region_kernel* kp = &k;
    while ((i = region_events(*kp, in, out, i, end)) < end && reg + 1 < regions &&
           table.kernel(reg + 1).contains(in[i]))
      kp = &table.kernel(++reg);
  }
  return {};
}

}  // namespace detail

/// Correct `inout` in place (guest → host). On error, `inout[0, index)` hold
/// host times and the rest are untouched guest times (`index` of the error).
template <class = void>
[[nodiscard]] inline expected<void, index_error> correct_batch(const sync_table& table, std::span<std::int64_t> inout) noexcept {
  return detail::run_batch<true>(table, inout.data(), inout.data(), inout.size(), tsync::detail::best_isa());
}

/// Correct `in` into `out` (guest → host). `out` must be at least as long as
/// `in` and must not partly overlap it (`errc::invalid_argument`, index 0);
/// `out.data() == in.data()` is the in-place case.
template <class = void>
[[nodiscard]] inline expected<void, index_error> correct_batch(const sync_table& table,
                                                               std::span<const std::int64_t> in,
                                                               std::span<std::int64_t> out) noexcept {
  if (out.size() < in.size()) return unexpected(index_error{errc::invalid_argument, 0});
  if (in.empty()) return {};
  if (static_cast<const void*>(in.data()) == static_cast<const void*>(out.data()))
    return detail::run_batch<true>(table, out.data(), out.data(), in.size(), tsync::detail::best_isa());
  // Addresses as integers: a total order without <functional>'s std::less.
  const auto at = [](const std::int64_t* p) { return reinterpret_cast<std::uintptr_t>(p); };
  const bool disjoint = at(in.data()) >= at(out.data() + in.size()) || at(out.data()) >= at(in.data() + in.size());
  if (!disjoint) return unexpected(index_error{errc::invalid_argument, 0});
  return detail::run_batch<false>(table, in.data(), out.data(), in.size(), tsync::detail::best_isa());
}

}  // namespace tsync::correct
