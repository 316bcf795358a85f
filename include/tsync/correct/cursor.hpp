#pragma once
/// \file
/// A streaming cursor over a `sync_table` for per-CPU event streams that are
/// mostly in time order.
///
/// The cursor remembers the region (pair of samples) of the previous event and
/// a kernel for it. An event in the same region costs one range check and one
/// multiplication; an event in one of the next few regions costs a short
/// forward walk; anything else (a backward jump or a long forward jump) falls
/// back to the table's binary search. Results are bit-identical to
/// `sync_table::correct` (every kernel is exact, see below and
/// docs/correction.md), so the cursor is a pure speed-up.
///
/// Three kernels, all for a region whose line is anchored at its first guest
/// time, with x = t − anchor and slope S = 1 + σ / den (σ in [−den, den)):
///
/// - **64-bit**: host = hbase + x + ((m · x) >> sh), with m = ceil(σ · 2^sh / den)
///   and sh the smallest shift with x_max · den < 2^sh. The 64-bit product m · x
///   is exact when |m| · x_max < 2^63, and then the shifted product is
///   floor(σ · x / den): the rounding error δ · x / 2^sh (δ < 1) stays below
///   1 / den, the smallest distance of σ · x / den to the next integer above.
///   This covers regions of a few milliseconds with any realistic drift (the
///   usual case with dense sampling) at the cost of one 64-bit product.
/// - **128-bit**, for short-form regions (x_max · den < 2^64, segments up to
///   about 4 s in ns) with S in [1/2, 3/2): host = hbase + x + floor(s · x / 2^64)
///   with s = mc − (1 − q) · 2^64, an int64, for `region_kernel::mc` =
///   ceil(r · 2^64 / den). The signed product s · x is mc · x − (1 − q) · x · 2^64,
///   so this is `region_kernel::apply_short`, exact with no correction.
/// - **checked 128-bit**, for longer segments with S in [1/2, 3/2): the same
///   with s = m − (1 − q) · 2^64 for the rounded-down `region_kernel::m`. The
///   low half of s · x is that of m · x, so the carry test of
///   `region_kernel::apply` carries over: without a carry the high half is
///   exact; with one (rarely) the table's kernel decides.
///
/// Other events of a region's fast range (extrapolation past the last sample,
/// which is anchored at the previous sample, and slopes far from 1) use the
/// table's `region_kernel`, still inline. Regions without a fast range (scaled
/// step samples, extrapolation before the first sample, results near the int64
/// limits) and region changes take the out-of-line slow path.

#include <cstddef>
#include <cstdint>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::correct {

namespace detail {

/// The cursor's state: the kernels' words and what the slow path needs to
/// find its place again. A plain value: the cursor gives the slow path a local
/// copy (never its own address) and reads the new state back, so the compiler
/// can keep the state in registers across the caller's loop.
struct cursor_state {
  static constexpr std::size_t unplaced = ~std::size_t{0};

  std::uint64_t anchor = 0;  // x = t − anchor
  std::uint64_t hbase = 0;   // host time at the anchor (bits of an int64)
  // 64-bit kernel: x < len64, host = hbase + x + ((m64 * x) >> sh)
  std::uint64_t len64 = 0;
  std::uint64_t m64 = 0;  // bits of an int64
  unsigned sh = 0;
  // 128-bit kernel (short form): x < len128, host = hbase + x + floor(s * x / 2^64)
  std::uint64_t len128 = 0;
  std::int64_t s = 0;
  // long kernel: x < len_long, the same with the carry test
  std::uint64_t len_long = 0;
  std::int64_t s_long = 0;
  // any other event of the region's fast range: the table's kernel
  const region_kernel* kp = nullptr;
  // slow path
  const sync_table* table = nullptr;
  std::size_t k = unplaced;  // current region
  std::size_t searches = 0;
};

/// How many regions the cursor walks forward before it binary-searches.
inline constexpr std::size_t cursor_forward_walk = 4;

/// Load the kernels of region `st.k` (precomputed by the table).
inline void cursor_load(cursor_state& st) noexcept {
  const region_kernel& kn = st.table->kernel(st.k);
  st.anchor = kn.anchor;
  st.hbase = kn.hbase;
  st.len64 = kn.len64;
  st.m64 = kn.m64;
  st.sh = kn.sh64;
  st.len128 = kn.len128;
  st.s = static_cast<std::int64_t>(kn.mc);  // S = 1 + s / 2^64: mc − (1 − q) * 2^64
  st.len_long = kn.len_long;
  st.s_long = static_cast<std::int64_t>(kn.m);
  st.kp = kn.lo <= kn.hi ? &kn : nullptr;
}

/// The slow path's result as plain scalars (returned in registers).
struct cursor_value {
  std::int64_t value;
  errc error;
  bool ok;
};

/// The slow path: the first event, another region, or an event outside the
/// region's fast range. Out of line; it reads the region and the
/// search count of `*st` and writes the whole new state to `*st`, a local copy
/// of the cursor's state. The result comes back in registers.
[[gnu::noinline]] inline cursor_value cursor_slow(cursor_state* st, std::int64_t t) noexcept {
  const sync_table& tb = *st->table;
  if (st->k == cursor_state::unplaced || t < tb.region_first(st->k) || t > tb.region_last(st->k)) {
    bool found = false;
    if (st->k != cursor_state::unplaced && t > tb.region_last(st->k)) {
      // t >= first of the next region, since t > last of this one.
      for (std::size_t i = 0; i < cursor_forward_walk && st->k + 1 < tb.regions(); ++i) {
        ++st->k;
        if (t <= tb.region_last(st->k)) {
          found = true;
          break;
        }
      }
    }
    if (!found) {
      st->k = tb.region_of(t);
      ++st->searches;
    }
  }
  cursor_load(*st);
  const region_kernel& kn = tb.kernel(st->k);
  if (kn.contains(t)) return cursor_value{kn.short_form ? kn.apply_short(t) : kn.apply(t), errc{}, true};
  const auto r = tb.correct_in_region(st->k, t);
  return r ? cursor_value{*r, errc{}, true} : cursor_value{0, r.error(), false};
}

}  // namespace detail

/// The kernel a cursor uses on its current region (see the file comment).
enum class cursor_kernel {
  bits64,           ///< one 64-bit product and a shift
  bits128,          ///< one signed 64×64→128 product (short form)
  bits128_checked,  ///< the same with the carry test (long segments)
  table,            ///< the table's region_kernel, inline
  slow,             ///< the out-of-line slow path (no fast range, or not placed)
};

/// Streaming guest→host correction. Holds a pointer to the table: the table
/// must outlive the cursor. Not thread-safe (one cursor per stream).
class cursor {
 public:
  /// How many regions the cursor walks forward before it binary-searches.
  static constexpr std::size_t forward_walk = detail::cursor_forward_walk;

  /// A cursor on `table`, not yet placed.
  explicit cursor(const sync_table& table) noexcept { st_.table = &table; }

  /// Guest → host, identical to `table.correct(guest_time)`.
  // Always inlined: the batch and the caller's loops keep the state in registers.
  [[nodiscard, gnu::always_inline]] expected<std::int64_t, errc> correct(std::int64_t guest_time) noexcept {
    const std::uint64_t x = static_cast<std::uint64_t>(guest_time) - st_.anchor;
    // The 64-bit kernel is the hot path of dense tables: laid out as the
    // fall-through, so an event costs no taken branch besides the caller's loop.
    if (x < st_.len64) [[likely]]
      return static_cast<std::int64_t>(st_.hbase + x +
                                       static_cast<std::uint64_t>(static_cast<std::int64_t>(st_.m64 * x) >> st_.sh));
    return correct_wide(guest_time, x);
  }
  /// Same as `correct`.
  [[nodiscard]] expected<std::int64_t, errc> operator()(std::int64_t guest_time) noexcept {
    return correct(guest_time);
  }

  /// The region the cursor is on (0 before the first call).
  [[nodiscard]] std::size_t region() const noexcept { return placed() ? st_.k : 0; }
  /// The table's kernel of the current region (an empty range before the first call).
  [[nodiscard]] const region_kernel& kernel() const noexcept {
    static constexpr region_kernel none{};
    return placed() ? st_.table->kernel(st_.k) : none;
  }
  /// Number of binary searches done so far (a diagnostic; the tests use it to
  /// check that in-order streams are corrected without searching).
  [[nodiscard]] std::size_t searches() const noexcept { return st_.searches; }
  /// Which kernel the current region's events take (a diagnostic for tests and
  /// tuning; see the file comment).
  [[nodiscard]] cursor_kernel kernel_kind() const noexcept {
    if (st_.len64 != 0) return cursor_kernel::bits64;
    if (st_.len128 != 0) return cursor_kernel::bits128;
    if (st_.len_long != 0) return cursor_kernel::bits128_checked;
    return st_.kp != nullptr ? cursor_kernel::table : cursor_kernel::slow;
  }
  /// Forget the position (the next event binary-searches).
  void reset() noexcept {
    st_.k = detail::cursor_state::unplaced;
    st_.len64 = 0;
    st_.len128 = 0;
    st_.len_long = 0;
    st_.kp = nullptr;
  }

 private:
  // Every kernel but the 64-bit one (see `correct`).
  [[gnu::always_inline]] expected<std::int64_t, errc> correct_wide(std::int64_t guest_time, std::uint64_t x) noexcept {
    if (x < st_.len128)
      return static_cast<std::int64_t>(
          st_.hbase + x + static_cast<std::uint64_t>(static_cast<std::int64_t>((static_cast<i128>(st_.s) * static_cast<std::int64_t>(x)) >> 64)));
    if (x < st_.len_long) {
      const i128 p = static_cast<i128>(st_.s_long) * static_cast<std::int64_t>(x);
      std::uint64_t sum = 0;
      if (!__builtin_add_overflow(static_cast<std::uint64_t>(p), x, &sum)) [[likely]]
        return static_cast<std::int64_t>(st_.hbase + x + static_cast<std::uint64_t>(static_cast<std::int64_t>(p >> 64)));
    }
    // A carry on the long kernel, or a region without any of them (extrapolation
    // past the last sample, slopes far from 1): the table's kernel, still inline.
    if (st_.kp != nullptr && st_.kp->contains(guest_time))
      return st_.kp->short_form ? st_.kp->apply_short(guest_time) : st_.kp->apply(guest_time);
    return correct_slow(guest_time);
  }

  // The slow path works on a copy: the cursor's own address never escapes.
  expected<std::int64_t, errc> correct_slow(std::int64_t t) noexcept {
    detail::cursor_state next;
    next.table = st_.table;
    next.k = st_.k;
    next.searches = st_.searches;
    const detail::cursor_value r = detail::cursor_slow(&next, t);
    st_.anchor = next.anchor;
    st_.hbase = next.hbase;
    st_.len64 = next.len64;
    st_.m64 = next.m64;
    st_.sh = next.sh;
    st_.len128 = next.len128;
    st_.s = next.s;
    st_.len_long = next.len_long;
    st_.s_long = next.s_long;
    st_.kp = next.kp;
    st_.k = next.k;
    st_.searches = next.searches;
    if (r.ok) return r.value;
    return unexpected(r.error);
  }
  [[nodiscard]] bool placed() const noexcept { return st_.k != detail::cursor_state::unplaced; }

  detail::cursor_state st_;
};

}  // namespace tsync::correct
