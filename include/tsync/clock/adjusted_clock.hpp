#pragma once
/// \file
/// A clock adapter that adds a known offset and a known rate error (drift) to
/// another clock: `reading = base + offset + drift_ppb * (base − anchor) / 1e9`.
///
/// Its purpose is ground truth: a responder reading `adjusted_clock<mono_raw_clock>`
/// against an initiator reading `mono_raw_clock` has a true offset (responder −
/// initiator) of exactly `offset + drift_ppb * (t − anchor) / 1e9` at initiator
/// time `t`, which tests compare estimates with.
///
/// Rounding: the drift term is rounded toward negative infinity (floor), computed
/// in 128 bits; a result outside int64 saturates.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "tsync/clock/clock_source.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// `t + offset + floor(drift_ppb * (t − anchor) / 1e9)`, saturated to int64.
[[nodiscard]] constexpr std::int64_t apply_offset_drift(std::int64_t t, std::int64_t offset, std::int64_t drift_ppb,
                                                        std::int64_t anchor) noexcept {
  const i128 dt = static_cast<i128>(t) - anchor;
  const i128 v = static_cast<i128>(t) + offset + floor_div(dt * drift_ppb, 1'000'000'000);
  if (v > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
  if (v < std::numeric_limits<std::int64_t>::min()) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(v);
}

/// Offset and drift added to a base clock.
struct offset_drift {
  std::int64_t offset_ns = 0;  ///< added to every reading
  std::int64_t drift_ppb = 0;  ///< rate error in parts per billion (1000 = 1 ppm)
  std::int64_t anchor = 0;     ///< base reading at which the drift term is zero
};

/// `Base` seen through a fixed offset and drift, as the clock of domain `D`
/// (by default the base's; a test that plays the guest with a shifted host
/// clock writes `adjusted_clock<mono_raw_clock, guest>`). `now()` returns the
/// base's kind of reading (time or counter) in domain `D` and is as
/// thread-safe as `Base::now()`.
template <clock_source Base, clock_domain D = typename Base::domain> class adjusted_clock {
 public:
  using domain = D;
  adjusted_clock(Base base, offset_drift od) noexcept(std::is_nothrow_move_constructible_v<Base>)
      : base_(std::move(base)), od_(od) {}
  [[nodiscard]] rebind_reading<reading_t<Base>, D> now() noexcept(noexcept(std::declval<Base&>().now_raw())) {
    return reading_from_raw<rebind_reading<reading_t<Base>, D>>(now_raw());
  }
  /// The same reading as a bare integer (the probe exchange's stamp).
  [[nodiscard]] std::int64_t now_raw() noexcept(noexcept(std::declval<Base&>().now_raw())) {
    return apply_offset_drift(base_.now_raw(), od_.offset_ns, od_.drift_ppb, od_.anchor);
  }
  [[nodiscard]] std::string_view name() const noexcept { return "adjusted"; }
  [[nodiscard]] const offset_drift& params() const noexcept { return od_; }
  /// The exact offset (this − base) when the base clock reads `base_time`.
  [[nodiscard]] std::int64_t true_offset_at(std::int64_t base_time) const noexcept {
    return apply_offset_drift(base_time, od_.offset_ns, od_.drift_ppb, od_.anchor) - base_time;
  }
  [[nodiscard]] Base& base() noexcept { return base_; }

 private:
  Base base_;
  offset_drift od_;
};

}  // namespace tsync::clock
