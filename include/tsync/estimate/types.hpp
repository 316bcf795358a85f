#pragma once
/// \file
/// Vocabulary shared by every estimator: intervals, fitting options, per-burst
/// estimates, statistics and the fixed-point line used by the piecewise model.
///
/// Sign convention (one direction everywhere): an *offset* is host − guest, so
/// `host = guest + offset`. For a probe `{t1, g, t2}` (t1/t2 host stamps, g the
/// guest stamp) causality confines the offset at guest time `g` to
/// `[t1 − g, t2 − g]`; the midpoint offset is `(t1 + t2)/2 − g`, which is the
/// *negative* of the per-probe `g − (t1 + t2)/2` written in sync_sample.hpp.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// A closed integer interval `[lo, hi]` (an offset interval, or host times).
struct interval {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  [[nodiscard]] constexpr bool contains(std::int64_t v) const noexcept { return lo <= v && v <= hi; }
  [[nodiscard]] constexpr std::int64_t width() const noexcept { return hi - lo; }
  friend constexpr bool operator==(const interval&, const interval&) = default;
};

/// Number of fraction bits of the fixed-point slopes (`slope_q48`): a slope of
/// 1 ppm is `2^48 / 10^6 ≈ 2.8e8`. The resolution, 2^-48 ≈ 3.6e-15, moves a
/// corrected time by 0.04 ns over three hours.
inline constexpr int slope_frac_bits = 48;

/// Convert a dimensionless slope to fixed point (rounded to nearest); empty if
/// it is not finite or does not fit.
[[nodiscard]] inline std::optional<std::int64_t> slope_to_q48(double slope) noexcept {
  if (!std::isfinite(slope)) return std::nullopt;
  const double q = std::ldexp(slope, slope_frac_bits);
  if (!(q > -9.2e18 && q < 9.2e18)) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(q));
}
/// The dimensionless value of a fixed-point slope.
[[nodiscard]] inline double q48_to_slope(std::int64_t q) noexcept {
  return std::ldexp(static_cast<double>(q), -slope_frac_bits);
}

/// A line `offset(t) = offset + slope_q48 · (t − ref) / 2^48` (ns, host − guest).
/// `ref` belongs to the segment that holds the line.
struct line {
  std::int64_t offset = 0;     ///< host − guest at the reference time (ns)
  std::int64_t slope_q48 = 0;  ///< d(offset)/d(guest time), fixed point with 48 fraction bits
  friend constexpr bool operator==(const line&, const line&) = default;

  /// The exact value at `dt = t − ref` as `floor`, `nearest` or `ceil` of the
  /// rational result, in 128 bits (no overflow is possible for 64-bit inputs).
  enum class rounding { floor, nearest, ceil };
  [[nodiscard]] constexpr i128 value_at(i128 dt, rounding r = rounding::nearest) const noexcept {
    const i128 num = static_cast<i128>(slope_q48) * dt;
    const i128 den = static_cast<i128>(1) << slope_frac_bits;
    i128 q = 0;
    switch (r) {
      case rounding::floor: q = floor_div(num, den); break;
      case rounding::ceil: q = ceil_div(num, den); break;
      case rounding::nearest: q = floor_div(num + den / 2, den); break;
    }
    return static_cast<i128>(offset) + q;
  }
};

/// Options shared by all estimators. Defaults suit nanosecond stamps from
/// probes a few µs long.
struct fit_options {
  /// When true, the first bad probe (t2 < t1, a duplicate id within a burst)
  /// makes the fit fail with its error code. When false (the default) bad
  /// probes are rejected and counted in the diagnostics.
  bool strict = false;
  /// Largest plausible |drift| (dimensionless; 1e-3 = 1000 ppm). Bounds the
  /// slope of hull fits and widens per-burst hard intervals by
  /// `max_drift · |t − ref|` to cover drift inside a burst and extrapolation.
  double max_drift = 1e-3;
  /// Reject probes whose one-way constraint stands out above its burst's
  /// robust envelope (stamp glitches, mis-paired replies); used by the
  /// envelope, hull, segmented and regression estimators. The trace-cmd
  /// baselines (fastest_response, histogram_peak) and median never filter.
  bool filter_outliers = true;
  /// Gate of the outlier filter, in units of the distance between the burst's
  /// 5 % envelope quantile and its median (see docs/estimators.md).
  double outlier_gate = 1.0;
  /// Coverage probability of statistical intervals.
  double confidence = 0.95;
  /// Fraction of probes the hull may drop, one at a time, to repair an
  /// infeasible constraint set before it reports `errc::infeasible`.
  double max_soft_reject = 0.002;
};

/// Check an options struct: non-finite values give `errc::non_finite`, values
/// outside their domain `errc::invalid_argument`.
[[nodiscard]] inline expected<void, errc> validate(const fit_options& o) noexcept {
  if (!std::isfinite(o.max_drift) || !std::isfinite(o.outlier_gate) || !std::isfinite(o.confidence) ||
      !std::isfinite(o.max_soft_reject))
    return unexpected(errc::non_finite);
  if (!(o.max_drift > 0.0 && o.max_drift <= 0.5)) return unexpected(errc::invalid_argument);
  if (!(o.outlier_gate > 0.0)) return unexpected(errc::invalid_argument);
  if (!(o.confidence > 0.0 && o.confidence < 1.0)) return unexpected(errc::invalid_argument);
  if (!(o.max_soft_reject >= 0.0 && o.max_soft_reject <= 0.5)) return unexpected(errc::invalid_argument);
  return {};
}

/// Counters every estimate carries.
struct fit_stats {
  std::uint64_t probes_used = 0;      ///< probes that entered the estimate
  std::uint64_t probes_rejected = 0;  ///< probes dropped (bad stamps, duplicates, outliers)
  std::int64_t min_rtt = 0;           ///< smallest t2 − t1 among the probes used (ns)
  std::uint32_t bursts = 0;           ///< bursts that contributed
  friend constexpr bool operator==(const fit_stats&, const fit_stats&) = default;
};

/// A statistical band: the half-width at `dt = t − ref` is
/// `k · sqrt(var_offset + 2·cov·dt + var_slope·dt²)` (ns², ns, dimensionless).
struct stat_band {
  double var_offset = 0;
  double cov = 0;
  double var_slope = 0;
  double k = 0;  ///< quantile multiplier (e.g. 1.96 for 95 %)
  [[nodiscard]] double half_width(double dt) const noexcept {
    const double v = var_offset + 2.0 * cov * dt + var_slope * dt * dt;
    return k * std::sqrt(v > 0.0 ? v : 0.0);
  }
  friend bool operator==(const stat_band&, const stat_band&) = default;
};

/// The result of a per-burst estimator: the offset at one guest time.
struct burst_estimate {
  std::int64_t ref = 0;              ///< guest time the estimate refers to
  std::int64_t offset = 0;           ///< host − guest at `ref` (ns, rounded to nearest)
  interval hard{};                   ///< offset interval guaranteed by causality (and max_drift)
  std::optional<double> stat_half{}; ///< half-width of a statistical interval, when the method has one
  fit_stats stats{};
  std::uint32_t burst = 0;           ///< burst number the estimate came from
};

/// Normal quantile for a two-sided interval of coverage `p` (Acklam's rational
/// approximation, |error| < 1.2e-9 on (0, 1)).
[[nodiscard]] inline double normal_quantile_two_sided(double p) noexcept {
  const double q = 0.5 + p / 2.0;  // upper quantile
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01,  -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  const double plow = 0.02425;
  if (q > 1.0 - plow) {
    const double r = std::sqrt(-2.0 * std::log(1.0 - q));
    return -(((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) /
           ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1.0);
  }
  const double r0 = q - 0.5;
  const double r = r0 * r0;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * r0 /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

}  // namespace tsync::estimate
