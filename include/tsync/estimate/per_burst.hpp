#pragma once
/// \file
/// Turn per-burst estimates into a piecewise-linear model: linear
/// interpolation between consecutive bursts' estimates (and between their hard
/// and statistical intervals), holding the first and last offsets outside the
/// data with hard bounds that widen by `max_drift · |t − ref|`.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/burst.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// A whole-trace estimator: a type with a `name` and a `fit` member.
template <class E>
concept trace_estimator = requires(const E& e, std::span<const probe_sample> p, const fit_options& o) {
  { E::name } -> std::convertible_to<std::string_view>;
  { e.fit(p, o) } -> std::same_as<expected<model, errc>>;
};

namespace detail {

/// Slope (q48) of the line through (x0, y0) and (x1, y1), x1 > x0, rounded to nearest.
[[nodiscard]] inline std::int64_t slope_between(std::int64_t x0, std::int64_t y0, std::int64_t x1, std::int64_t y1) {
  const i128 dy = static_cast<i128>(y1) - y0;
  const i128 dx = static_cast<i128>(x1) - x0;
  const i128 q = floor_div((dy << slope_frac_bits) + dx / 2, dx);
  const i128 lim = static_cast<i128>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::clamp(q, -lim, lim));
}

/// True when two consecutive burst estimates cannot both hold on one clock
/// whose drift stays within `max_drift`: their hard intervals, each widened by
/// `max_drift` times the time between them, do not meet. The clock stepped
/// (a pause, a suspend, a forward step) between them.
[[nodiscard]] inline bool definite_break(const burst_estimate& e0, const burst_estimate& e1, double max_drift) {
  const double d = max_drift * static_cast<double>(static_cast<i128>(e1.ref) - e0.ref);
  return static_cast<double>(e1.hard.lo) > static_cast<double>(e0.hard.hi) + d ||
         static_cast<double>(e1.hard.hi) < static_cast<double>(e0.hard.lo) - d;
}

/// A line `l` with reference `from` re-expressed at reference `to`.
[[nodiscard]] inline line moved_line(const line& l, std::int64_t from, std::int64_t to, bool down) {
  const i128 v = l.value_at(static_cast<i128>(to) - from, down ? line::rounding::floor : line::rounding::ceil);
  const i128 lim = static_cast<i128>(std::numeric_limits<std::int64_t>::max());
  return {static_cast<std::int64_t>(std::clamp(v, -lim, lim)), l.slope_q48};
}

/// The two segments between bursts across a break: nothing is interpolated.
/// The truth lies on the clock of one side or the other, so the hard bounds
/// are the union of both sides' intervals, each widened by `max_drift` (`dq`,
/// q48) away from its burst; the point estimate holds the nearer burst's
/// offset (causes `gap`, then `step` at the midpoint).
template <class = void>
[[nodiscard]] inline std::vector<segment> break_segments(const burst_estimate& e0, const burst_estimate& e1,
                                                         std::int64_t dq, bool first) {
  const std::int64_t mid = static_cast<std::int64_t>(floor_div(static_cast<i128>(e0.ref) + e1.ref, 2));
  std::vector<segment> out;
  for (int half = 0; half < 2; ++half) {
    if (half == 1 && mid == e0.ref) continue;
    segment s;
    s.begin = half == 0 ? e0.ref : mid;
    s.end = half == 0 ? mid : e1.ref;
    s.ref = s.begin;
    const auto& e = half == 0 ? e0 : e1;
    s.fit = {e.offset, 0};
    s.lo = {moved_line({e0.hard.lo, -dq}, e0.ref, s.ref, true), moved_line({e1.hard.lo, dq}, e1.ref, s.ref, true)};
    s.hi = {moved_line({e0.hard.hi, dq}, e0.ref, s.ref, false), moved_line({e1.hard.hi, -dq}, e1.ref, s.ref, false)};
    s.diag.stats = e.stats;
    s.diag.cause = half == 0 ? (first ? boundary_cause::start : boundary_cause::gap) : boundary_cause::step;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace detail

/// Build the interpolating model from per-burst estimates (any order; bursts
/// sharing a reference time keep the first). `extra_rejected` (probes lost
/// before or in bursts that produced no estimate) is added to the first
/// segment's rejected count. Errors: `empty_input` when `est` is empty.
template <class = void>
[[nodiscard]] inline expected<model, errc> interpolate_bursts(std::vector<burst_estimate> est, std::string name,
                                                             const fit_options& opt,
                                                             std::uint64_t extra_rejected = 0) {
  if (est.empty()) return unexpected(errc::empty_input);
  std::stable_sort(est.begin(), est.end(), [](const burst_estimate& a, const burst_estimate& b) { return a.ref < b.ref; });
  est.erase(std::unique(est.begin(), est.end(), [](const burst_estimate& a, const burst_estimate& b) { return a.ref == b.ref; }),
            est.end());
  const auto dq = slope_to_q48(opt.max_drift);
  if (!dq) return unexpected(errc::non_finite);
  const double z = normal_quantile_two_sided(opt.confidence);
  bool all_stat = true;
  for (const auto& e : est) all_stat = all_stat && e.stat_half.has_value();
  auto var_of = [&](const burst_estimate& e) { return (*e.stat_half / z) * (*e.stat_half / z); };

  model m;
  m.estimator = std::move(name);
  // Hold before the first burst: θ(t) = θ0, bounds widen by D·|t − ref| as t decreases.
  {
    const auto& e = est.front();
    segment s;
    s.begin = std::numeric_limits<std::int64_t>::min();
    s.end = e.ref;
    s.ref = e.ref;
    s.fit = {e.offset, 0};
    s.lo = {{e.hard.lo, *dq}};
    s.hi = {{e.hard.hi, -*dq}};
    if (all_stat) s.stat = stat_band{var_of(e), 0, 0, z};
    s.diag.stats = e.stats;
    s.diag.stats.probes_rejected += extra_rejected;
    s.diag.cause = boundary_cause::hold;
    m.segments.push_back(std::move(s));
  }
  for (std::size_t i = 0; i + 1 < est.size(); ++i) {
    const auto& e0 = est[i];
    const auto& e1 = est[i + 1];
    if (detail::definite_break(e0, e1, opt.max_drift)) {
      for (auto& g : detail::break_segments(e0, e1, *dq, i == 0)) m.segments.push_back(std::move(g));
      continue;
    }
    segment s;
    s.begin = e0.ref;
    s.end = e1.ref;
    s.ref = e0.ref;
    s.fit = {e0.offset, detail::slope_between(e0.ref, e0.offset, e1.ref, e1.offset)};
    s.lo = {{e0.hard.lo, detail::slope_between(e0.ref, e0.hard.lo, e1.ref, e1.hard.lo)}};
    s.hi = {{e0.hard.hi, detail::slope_between(e0.ref, e0.hard.hi, e1.ref, e1.hard.hi)}};
    if (all_stat) {
      const double a = var_of(e0), b = var_of(e1);
      const double d = static_cast<double>(static_cast<i128>(e1.ref) - e0.ref);
      s.stat = stat_band{a, -a / d, (a + b) / (d * d), z};
    }
    s.diag.stats = e0.stats;
    s.diag.cause = i == 0 ? boundary_cause::start : boundary_cause::burst;
    m.segments.push_back(std::move(s));
  }
  {
    const auto& e = est.back();
    segment s;
    s.begin = e.ref;
    s.end = e.ref == std::numeric_limits<std::int64_t>::max() ? e.ref : e.ref + 1;
    s.ref = e.ref;
    s.fit = {e.offset, 0};
    s.lo = {{e.hard.lo, -*dq}};
    s.hi = {{e.hard.hi, *dq}};
    if (all_stat) s.stat = stat_band{var_of(e), 0, 0, z};
    s.diag.stats = e.stats;
    s.diag.cause = est.size() == 1 ? boundary_cause::start : boundary_cause::hold;
    m.segments.push_back(std::move(s));
  }
  // A lone burst at the very first representable time makes the hold-before
  // segment share its begin: drop it.
  if (m.segments.size() >= 2 && m.segments[0].begin == m.segments[1].begin) m.segments.erase(m.segments.begin());
  return m;
}

/// Apply a per-burst estimator to every burst and interpolate. Bursts whose
/// estimate fails (e.g. an empty causality envelope) are skipped and their
/// probes counted as rejected. Errors: those of `prepare`, and `all_rejected`
/// when no burst gives an estimate.
template <burst_estimator E>
[[nodiscard]] expected<model, errc> fit_per_burst(std::span<const probe_sample> probes, const fit_options& opt = {}) {
  auto prep = prepare(probes, opt, E::gated);
  if (!prep) return unexpected(prep.error());
  const double slope = rough_slope(prep->bursts);
  std::vector<burst_estimate> est;
  std::uint64_t lost = 0;
  for (const auto& b : prep->bursts) {
    auto e = E{}(b, opt, slope);
    if (e) est.push_back(*e);
    else lost += b.probes.size() + b.rejected;
  }
  if (est.empty()) return unexpected(errc::all_rejected);
  // Rejections of bursts without an estimate are not in any estimate's stats.
  return interpolate_bursts(std::move(est), std::string(E::name), opt, lost);
}

/// The per-burst estimators as trace estimators.
template <burst_estimator E> struct per_burst {
  static constexpr std::string_view name = E::name;
  [[nodiscard]] expected<model, errc> fit(std::span<const probe_sample> p, const fit_options& o) const {
    return fit_per_burst<E>(p, o);
  }
};

}  // namespace tsync::estimate
