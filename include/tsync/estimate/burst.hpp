#pragma once
/// \file
/// Per-burst estimators: each turns the probes of one burst into the offset
/// (host − guest) at one guest time, with a hard interval from causality.
///
/// * `fastest_response` — trace-cmd's default, repaired: the fastest trip of
///   each direction (not the fastest round trip, which is itself asymmetric).
/// * `histogram_peak` — trace-cmd's histogram, repaired: signed offsets, the
///   bin width from the data (Freedman–Diaconis, at least 1 ns), no division by
///   zero when all offsets are equal, and the centre of the fullest bin.
/// * `median` — the median midpoint offset, with a distribution-free
///   order-statistic interval for that median as its statistical interval.
/// * `split_envelope` — per-direction minima: the offset interval
///   `[max(t1 − g), min(t2 − g)]` and its centre (the maximum-likelihood
///   estimate for exponential queueing, error O(1/N) instead of O(1/√N)).
///
/// Unless stated, the hard interval is the burst's split envelope widened by
/// `max_drift · |g − ref|` per probe, so that it stays valid when the clocks
/// drift during the burst.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// A per-burst estimator: a type with a `name` and a call operator that maps
/// one screened burst (and the de-trending slope) to an estimate. `gated`
/// says whether the outlier gate runs before it.
template <class E>
concept burst_estimator = requires(const E& e, const burst_probes& b, const fit_options& o, double slope) {
  { E::name } -> std::convertible_to<std::string_view>;
  { E::gated } -> std::convertible_to<bool>;
  { e(b, o, slope) } -> std::same_as<expected<burst_estimate, errc>>;
};

namespace detail {

template <class = void>
[[nodiscard]] inline fit_stats burst_stats(const burst_probes& b) {
  fit_stats s;
  s.probes_used = b.probes.size();
  s.probes_rejected = b.rejected;
  s.bursts = 1;
  s.min_rtt = b.probes.empty() ? 0 : rtt_of(b.probes.front());
  for (const auto& p : b.probes) s.min_rtt = std::min(s.min_rtt, rtt_of(p));
  return s;
}

/// Hard interval of the offset at `ref`: max over probes of `(t1 − g) − D·|g − ref|`
/// and min of `(t2 − g) + D·|g − ref|`. Empty interval → `errc::infeasible`.
template <class = void>
[[nodiscard]] inline expected<interval, errc> hard_envelope(const burst_probes& b, std::int64_t ref, double max_drift) {
  double lo = -1e300, hi = 1e300;
  const std::int64_t base = lower_bound_of(b.probes.front());
  for (const auto& p : b.probes) {
    const double w = max_drift * std::fabs(static_cast<double>(static_cast<i128>(p.g) - ref));
    lo = std::max(lo, static_cast<double>(lower_bound_of(p) - base) - w);
    hi = std::min(hi, static_cast<double>(upper_bound_of(p) - base) + w);
  }
  // One extra nanosecond each way absorbs the double rounding above.
  interval r{base + static_cast<std::int64_t>(std::floor(lo)) - 1, base + static_cast<std::int64_t>(std::ceil(hi)) + 1};
  if (r.lo > r.hi) return unexpected(errc::infeasible);
  return r;
}

/// The probes' midpoint offsets (host − guest), sorted.
template <class = void>
[[nodiscard]] inline std::vector<i128> sorted_midpoints(const burst_probes& b) {
  std::vector<i128> v;
  v.reserve(b.probes.size());
  for (const auto& p : b.probes) v.push_back(midpoint_offset(p));
  std::sort(v.begin(), v.end());
  return v;
}

/// Complete an estimate whose `ref` and `offset` are set: the hard envelope at
/// `ref` (`errc::infeasible` when empty), the burst's statistics and number.
template <class = void>
[[nodiscard]] inline expected<burst_estimate, errc> with_envelope(burst_estimate e, const burst_probes& b,
                                                                 const fit_options& o) {
  auto h = hard_envelope(b, e.ref, o.max_drift);
  if (!h) return unexpected(h.error());
  e.hard = *h;
  // The point estimate lies in its own hard interval: an estimate the
  // causality constraints exclude is moved to the nearest value they allow.
  e.offset = std::clamp(e.offset, e.hard.lo, e.hard.hi);
  e.stats = burst_stats(b);
  e.burst = b.burst;
  return e;
}

[[nodiscard]] inline std::int64_t round_half_up(i128 num, i128 den) { return static_cast<std::int64_t>(floor_div(2 * num + den, 2 * den)); }

}  // namespace detail

namespace detail {

/// The centre of the burst's split envelope `[max(t1 − g), min(t2 − g)]`,
/// each bound de-trended to `ref` with `slope`. When the de-trended envelope
/// is empty (a wrong slope) the raw one (slope 0) is used; empty if that is
/// empty too.
template <class = void>
[[nodiscard]] inline std::optional<std::int64_t> envelope_centre(const burst_probes& b, std::int64_t ref,
                                                                 double slope) {
  const std::int64_t base = lower_bound_of(b.probes.front());
  for (double s : {slope, 0.0}) {
    double lo = -1e300, hi = 1e300;
    for (const auto& p : b.probes) {
      const double trend = s * static_cast<double>(static_cast<i128>(p.g) - ref);
      lo = std::max(lo, static_cast<double>(lower_bound_of(p) - base) - trend);
      hi = std::min(hi, static_cast<double>(upper_bound_of(p) - base) - trend);
    }
    if (lo <= hi) return base + static_cast<std::int64_t>(std::llround((lo + hi) / 2.0));
    if (s == 0.0) break;
  }
  return std::nullopt;
}

}  // namespace detail

/// The fastest response of each direction. trace-cmd takes the one probe with
/// the smallest round trip and its midpoint; that round trip is itself
/// asymmetric (on loopback: 12.2 µs out, 10.0 back, a −1.1 µs bias) while the
/// smallest delays of the two directions, taken from different probes, are
/// symmetric. This estimator therefore takes the largest lower bound
/// `t1 − g` (the fastest forward trip) and the smallest upper bound `t2 − g`
/// (the fastest return) and returns their centre, at the burst's median guest
/// stamp; no probe is filtered. Its hard interval is that envelope widened by
/// `max_drift` (see the file comment), which also contains the fastest
/// probe's own interval's intersection with all others.
struct fastest_response_estimator {
  static constexpr std::string_view name = "fastest_response";
  static constexpr bool gated = false;
  template <class = void>
  [[nodiscard]] expected<burst_estimate, errc> operator()(const burst_probes& b, const fit_options& o,
                                                          double slope) const {
    if (b.probes.empty()) return unexpected(errc::empty_input);
    burst_estimate e;
    e.ref = b.ref();
    const auto c = detail::envelope_centre(b, e.ref, slope);
    if (!c) return unexpected(errc::infeasible);
    e.offset = *c;
    return detail::with_envelope(e, b, o);
  }
};

/// trace-cmd's histogram estimator with its bugs fixed (see the file comment).
/// Reference time: the burst's median guest stamp.
struct histogram_peak_estimator {
  static constexpr std::string_view name = "histogram_peak";
  static constexpr bool gated = false;
  template <class = void>
  [[nodiscard]] expected<burst_estimate, errc> operator()(const burst_probes& b, const fit_options& o, double) const {
    if (b.probes.empty()) return unexpected(errc::empty_input);
    const std::vector<i128> v = detail::sorted_midpoints(b);
    const std::size_t n = v.size();
    const i128 lo = v.front(), hi = v.back();
    const i128 iqr = v[(3 * n) / 4 < n ? (3 * n) / 4 : n - 1] - v[n / 4];
    // Freedman–Diaconis width 2·IQR/n^(1/3), at least 1 ns.
    i128 width = static_cast<i128>(std::ceil(2.0 * static_cast<double>(iqr) / std::cbrt(static_cast<double>(n))));
    if (width < 1) width = 1;
    constexpr i128 max_bins = 100000;
    if ((hi - lo) / width + 1 > max_bins) width = (hi - lo) / (max_bins - 1) + 1;
    const auto bins = static_cast<std::size_t>((hi - lo) / width + 1);
    std::vector<std::uint32_t> count(bins, 0);
    for (auto x : v) ++count[static_cast<std::size_t>((x - lo) / width)];
    const auto med_bin = static_cast<std::size_t>((v[n / 2] - lo) / width);
    std::size_t best = 0;
    for (std::size_t i = 1; i < bins; ++i) {
      const auto di = i > med_bin ? i - med_bin : med_bin - i;
      const auto db = best > med_bin ? best - med_bin : med_bin - best;
      if (count[i] > count[best] || (count[i] == count[best] && di < db)) best = i;
    }
    burst_estimate e;
    e.ref = b.ref();
    e.offset = static_cast<std::int64_t>(lo + width * static_cast<i128>(best) + (width - 1) / 2);
    return detail::with_envelope(e, b, o);
  }
};

/// The median midpoint offset (mean of the two middle values for even counts,
/// rounded half up) at the burst's median guest stamp. Statistical interval:
/// the order statistics that bracket the median with `confidence` (normal
/// approximation of the binomial), made symmetric.
struct median_estimator {
  static constexpr std::string_view name = "median";
  static constexpr bool gated = false;
  template <class = void>
  [[nodiscard]] expected<burst_estimate, errc> operator()(const burst_probes& b, const fit_options& o, double) const {
    if (b.probes.empty()) return unexpected(errc::empty_input);
    const std::vector<i128> v = detail::sorted_midpoints(b);
    const std::size_t n = v.size();
    const i128 med2 = n % 2 == 1 ? 2 * v[n / 2] : v[n / 2 - 1] + v[n / 2];
    burst_estimate e;
    e.ref = b.ref();
    e.offset = detail::round_half_up(med2, 2);
    const double z = normal_quantile_two_sided(o.confidence);
    const double half_rank = z * std::sqrt(static_cast<double>(n)) / 2.0;
    const double c = static_cast<double>(n) / 2.0;
    const auto j = static_cast<std::size_t>(std::max(0.0, std::floor(c - half_rank)));
    const auto k = static_cast<std::size_t>(std::min(static_cast<double>(n - 1), std::ceil(c + half_rank)));
    const double m = static_cast<double>(med2) / 2.0;
    e.stat_half = std::max(m - static_cast<double>(v[j]), static_cast<double>(v[k]) - m);
    return detail::with_envelope(e, b, o);
  }
};

/// Per-direction minima. Each bound is de-trended to the reference time with
/// `slope` (the drift estimated across bursts; 0 for a lone burst) before the
/// extremes are taken; the estimate is the centre of `[max(t1 − g), min(t2 − g)]`
/// (of the raw bounds when the de-trended envelope is empty: the slope is
/// then wrong, and a centre of an empty interval is no estimate).
struct split_envelope_estimator {
  static constexpr std::string_view name = "split_envelope";
  static constexpr bool gated = true;
  template <class = void>
  [[nodiscard]] expected<burst_estimate, errc> operator()(const burst_probes& b, const fit_options& o,
                                                          double slope) const {
    if (b.probes.empty()) return unexpected(errc::empty_input);
    burst_estimate e;
    e.ref = b.ref();
    const auto c = detail::envelope_centre(b, e.ref, slope);
    if (!c) return unexpected(errc::infeasible);
    e.offset = *c;
    return detail::with_envelope(e, b, o);
  }
};

static_assert(burst_estimator<fastest_response_estimator>);
static_assert(burst_estimator<histogram_peak_estimator>);
static_assert(burst_estimator<median_estimator>);
static_assert(burst_estimator<split_envelope_estimator>);

/// Run a per-burst estimator on the probes of ONE burst (the `burst` field is
/// ignored). Bad probes are screened as in `prepare` (rejected and counted,
/// or fatal with `opt.strict`); gated estimators also run the outlier gate.
template <burst_estimator E>
[[nodiscard]] expected<burst_estimate, errc> estimate_burst(std::span<const probe_sample> probes,
                                                           const fit_options& opt = {}) {
  if (auto v = validate(opt); !v) return unexpected(v.error());
  if (probes.empty()) return unexpected(errc::empty_input);
  burst_probes b;
  b.burst = probes.front().burst;
  auto s = detail::screen_group(probes, opt, b.rejected);
  if (!s) return unexpected(s.error());
  b.probes = std::move(*s);
  if (E::gated && opt.filter_outliers) {
    gate_outliers(b, 0.0, opt.outlier_gate);
    if (opt.extreme_gate > 0) gate_extremes(b, 0.0, opt.extreme_gate);
  }
  if (b.probes.empty()) return unexpected(errc::all_rejected);
  return E{}(b, opt, 0.0);
}

/// trace-cmd's fastest response on one burst.
template <class = void>
[[nodiscard]] inline expected<burst_estimate, errc> fastest_response(std::span<const probe_sample> p,
                                                                    const fit_options& o = {}) {
  return estimate_burst<fastest_response_estimator>(p, o);
}
/// The repaired histogram peak on one burst.
template <class = void>
[[nodiscard]] inline expected<burst_estimate, errc> histogram_peak(std::span<const probe_sample> p,
                                                                  const fit_options& o = {}) {
  return estimate_burst<histogram_peak_estimator>(p, o);
}
/// The median midpoint offset of one burst.
template <class = void>
[[nodiscard]] inline expected<burst_estimate, errc> median(std::span<const probe_sample> p, const fit_options& o = {}) {
  return estimate_burst<median_estimator>(p, o);
}
/// The split envelope of one burst.
template <class = void>
[[nodiscard]] inline expected<burst_estimate, errc> split_envelope(std::span<const probe_sample> p,
                                                                  const fit_options& o = {}) {
  return estimate_burst<split_envelope_estimator>(p, o);
}

}  // namespace tsync::estimate
