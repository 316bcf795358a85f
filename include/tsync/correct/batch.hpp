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
/// that spans several regions goes through the streaming cursor's kernels,
/// inline, event by event.

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

// InPlace: in == out (the kernels load each vector before storing it).
template <bool InPlace>
expected<void, index_error> run_batch(const sync_table& table, const std::int64_t* in, std::int64_t* out, std::size_t n,
                       tsync::detail::isa which) noexcept {
  cursor c(table);
  std::size_t i = 0;
  while (i < n) {
    const region_kernel& k = c.kernel();
    if (!k.contains(in[i])) {
      auto r = c.correct(in[i]);
      if (!r) return unexpected(index_error{r.error(), i});
      out[i] = *r;
      ++i;
      continue;
    }
    const std::size_t end = std::min(n, i + batch_block);
    // Whole block in this region (checked on its last event first, which is
    // what fails for an in-order stream leaving the region): a block kernel.
    if (k.contains(in[end - 1]) && tsync::detail::region_block(which, in + i, out + i, end - i, block_words(k))) {
      i = end;
      continue;
    }
    // Otherwise the block goes event by event through the cursor's kernels, inline.
    for (; i < end; ++i) {
      const auto r = c.correct(in[i]);
      if (!r) return unexpected(index_error{r.error(), i});
      out[i] = *r;
    }
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
