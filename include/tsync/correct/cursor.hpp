#pragma once
/// \file
/// A streaming cursor over a `sync_table` for per-CPU event streams that are
/// mostly in time order.
///
/// The cursor remembers the region (pair of samples) of the previous event and
/// its precomputed fixed-point kernel. An event in the same region costs one
/// range check and the kernel (a few multiplications); an event in one of the
/// next few regions costs a short forward walk; anything else (a backward jump
/// or a long forward jump) falls back to the table's binary search. Results are
/// bit-identical to `sync_table::correct` (the kernel is exact, see
/// `region_kernel`), so the cursor is a pure speed-up.

#include <cstddef>
#include <cstdint>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/correct/sync_table.hpp"

namespace tsync::correct {

/// Streaming guest→host correction. Holds a pointer to the table: the table
/// must outlive the cursor. Not thread-safe (one cursor per stream).
class cursor {
 public:
  /// How many regions the cursor walks forward before it binary-searches.
  static constexpr std::size_t forward_walk = 4;

  /// A cursor on `table`, not yet placed.
  explicit cursor(const sync_table& table) noexcept : table_(&table) {}

  /// Guest → host, identical to `table.correct(guest_time)`.
  [[nodiscard]] expected<std::int64_t, errc> correct(std::int64_t guest_time) noexcept {
    // Hot path: region_kernel::apply_short on a kernel anchored at the start of
    // its fast range with q in {0, 1} (host and guest clocks within 100 % of
    // each other): one range check, one multiplication, q * x as a mask.
    const std::uint64_t x = static_cast<std::uint64_t>(guest_time) - anchor_;
    if (x < len_) return static_cast<std::int64_t>(hbase_ + (x & qmask_) + mulhi_u64(mc_, x));
    return correct_other(guest_time);
  }
  /// Same as `correct`.
  [[nodiscard]] expected<std::int64_t, errc> operator()(std::int64_t guest_time) noexcept {
    return correct(guest_time);
  }

  /// The region the cursor is on (meaningful after the first call).
  [[nodiscard]] std::size_t region() const noexcept { return k_; }
  /// The fast-path kernel of the current region (empty range before the first call).
  [[nodiscard]] const region_kernel& kernel() const noexcept { return kernel_; }
  /// Number of binary searches done so far (a diagnostic; the tests use it to
  /// check that in-order streams are corrected without searching).
  [[nodiscard]] std::size_t searches() const noexcept { return searches_; }
  /// Forget the position (the next event binary-searches).
  void reset() noexcept {
    placed_ = false;
    kernel_ = region_kernel{};
    len_ = 0;
    long_lo_ = 1;
    long_hi_ = 0;
  }

 private:
  // Long regions (the exact correction is needed) and kernels not anchored at
  // their start, then everything else.
  expected<std::int64_t, errc> correct_other(std::int64_t t) noexcept {
    if (t >= long_lo_ && t <= long_hi_)
      return kernel_.short_form ? kernel_.apply_short(t) : kernel_.apply(t);
    return correct_slow(t);
  }
  // Out of line: keeps the hot loop of the caller small (few live registers).
  [[gnu::noinline]] expected<std::int64_t, errc> correct_slow(std::int64_t t) noexcept {
    if (!placed_ || t < first_ || t > last_) locate(t);
    if (kernel_.contains(t)) return kernel_.short_form ? kernel_.apply_short(t) : kernel_.apply(t);
    return table_->correct_in_region(k_, t);
  }
  void locate(std::int64_t t) noexcept {
    if (placed_ && t > last_) {
      // t >= first of the next region, since t > last of this one.
      for (std::size_t i = 0; i < forward_walk && k_ + 1 < table_->regions(); ++i) {
        ++k_;
        load();
        if (t <= last_) return;
      }
    }
    k_ = table_->region_of(t);
    ++searches_;
    load();
    placed_ = true;
  }
  void load() noexcept {
    first_ = table_->region_first(k_);
    last_ = table_->region_last(k_);
    kernel_ = table_->kernel(k_);
    const bool nonempty = kernel_.lo <= kernel_.hi;
    const bool hot = nonempty && kernel_.q <= 1 && kernel_.short_form &&
                     kernel_.anchor == static_cast<std::uint64_t>(kernel_.lo);
    anchor_ = kernel_.anchor;
    hbase_ = kernel_.hbase;
    mc_ = kernel_.mc;
    qmask_ = 0u - kernel_.q;
    // x < len_ <=> lo <= t <= hi (a full int64 range loses INT64_MAX to the other path)
    const std::uint64_t span = static_cast<std::uint64_t>(kernel_.hi) - static_cast<std::uint64_t>(kernel_.lo);
    len_ = hot ? (span == ~std::uint64_t{0} ? span : span + 1) : 0;
    long_lo_ = nonempty ? kernel_.lo : 1;
    long_hi_ = nonempty ? kernel_.hi : 0;
  }

  const sync_table* table_;
  // hot path: a copy of the kernel's fields, x = t − anchor_ in [0, len_)
  std::uint64_t anchor_ = 0;
  std::uint64_t len_ = 0;
  std::uint64_t hbase_ = 0;
  std::uint64_t qmask_ = 0;        // q * x as a mask when q is 0 or 1
  std::uint64_t mc_ = 0;
  std::int64_t long_lo_ = 1;       // the kernel's whole fast range (empty: lo > hi)
  std::int64_t long_hi_ = 0;
  region_kernel kernel_{};
  std::size_t k_ = 0;
  std::int64_t first_ = 0;
  std::int64_t last_ = -1;
  std::size_t searches_ = 0;
  bool placed_ = false;
};

}  // namespace tsync::correct
