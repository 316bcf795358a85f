#pragma once
/// \file
/// Weighted least squares over a whole trace, with Eigen: a line fitted to the
/// per-burst, bias-corrected envelope centres (see envelope.hpp).
///
/// Regressing raw midpoint offsets is biased whenever the queueing of one
/// direction dominates: the midpoint carries half the queueing difference, and
/// chrony's remedies (delay weights `(1 + excess/sd)^-2` and a jitter-asymmetry
/// term linear in the RTT excess) assume a relation that is not linear for
/// exponential queueing (measured: +1.4 µs on the `lopsided_queueing` preset).
/// Each burst therefore contributes one measurement, the centre of its split
/// envelope corrected for the two directions' expected minimum queueing (the
/// `asymmetry_term`), with the model variance of envelope.hpp as inverse
/// weight. The statistical interval uses the weighted residual variance, so a
/// wrong variance scale cancels, and `(XᵀWX)⁻¹`, with Student's t for
/// `n − 2` degrees of freedom. It covers the offset up to the asymmetry floor
/// (a constant difference of the minimum delays, which no two-way method can
/// see). The hard interval is the exact hull polygon of the same probes (the
/// fit fails with `errc::infeasible` when no line satisfies causality).
///
/// Include this header only where Eigen is available (link `tsync::eigen`),
/// and call `register_regression(default_registry())` (or on your own
/// `registry`) to make `regression` available by name.

#include <Eigen/Core>
#include <Eigen/LU>  // inverse()
#include <Eigen/QR>  // colPivHouseholderQr()
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/envelope.hpp"
#include "tsync/estimate/hull.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/registry.hpp"
#include "tsync/estimate/trace.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// The weighted regression estimator (see the file comment).
struct regression_estimator {
  static constexpr std::string_view name = "regression";
  /// Correct each burst's envelope centre for the expected minimum queueing
  /// of each direction (the jitter asymmetry); false uses the raw centres.
  bool asymmetry_term = true;

  /// Lag-1 correlation of the residuals `res` (sum of squares `rss`),
  /// clamped to [0, 0.98]; 0 for fewer than four.
  template <class = void>
  [[nodiscard]] static double lag1_correlation(const Eigen::VectorXd& res, double rss) {
    const Eigen::Index n = res.size();
    if (n <= 3 || !(rss > 0)) return 0.0;
    double r1 = 0;
    for (Eigen::Index i = 0; i + 1 < n; ++i) r1 += res(i) * res(i + 1);
    return std::clamp(r1 / rss, 0.0, 0.98);
  }

  /// Model error: where the least-squares line (theta, rho) and the hull's
  /// envelope line (th_h, rho_h: the LP estimate, blind to how queueing is
  /// spread) disagree, the band is at least as wide as their difference. On a
  /// real link a slow queueing wander can tilt the least-squares line by
  /// 100+ ppb on a same-clock trace.
  static void widen_to_hull(stat_band& band, double theta, double rho, double th_h, double rho_h) {
    const double kq = band.k > 0 ? band.k : 1.0;
    band.var_offset = std::max(band.var_offset, (theta - th_h) * (theta - th_h) / (kq * kq));
    band.var_slope = std::max(band.var_slope, (rho - rho_h) * (rho - rho_h) / (kq * kq));
  }

  template <class = void>
  [[nodiscard]] expected<model, errc> fit(std::span<const probe_sample> probes, const fit_options& opt = {}) const {
    auto sb = detail::screen_bursts(probes, opt, segmented_jump_gate);
    if (!sb) return unexpected(sb.error());
    auto& bursts = sb->bursts;
    // Hard bounds from the hull over the same probes.
    auto seg = detail::hull_segment(bursts, 0, bursts.size() - 1, opt);
    if (!seg) return unexpected(seg.error());
    const std::int64_t ref = seg->ref;
    std::uint64_t lost = 0;
    auto pts = envelope_points(bursts, sb->slope, opt, lost, asymmetry_term);
    // Detected asymmetry changes: keep the asymmetry before the first one.
    const auto shift = detail::asymmetry_centre_shifts(sb->changes, sb->summary);
    for (auto& e : pts) e.centre += shift[e.index];
    if (pts.empty()) return unexpected(errc::infeasible);
    const auto n = static_cast<Eigen::Index>(pts.size());
    const std::int64_t base = pts.front().base;
    double xscale = 1.0;
    for (const auto& e : pts) xscale = std::max(xscale, std::fabs(static_cast<double>(static_cast<i128>(e.ref) - ref)));
    // One burst: the slope is the hull's, the interval the burst's own model.
    double theta = 0, rho = q48_to_slope(seg->fit.slope_q48);
    stat_band band{0, 0, 0, normal_quantile_two_sided(opt.confidence)};
    auto y_of = [&](const envelope_point& e) { return static_cast<double>(e.base - base) + e.centre; };
    if (n == 1) {
      const auto& e = pts.front();
      theta = y_of(e) - rho * static_cast<double>(static_cast<i128>(e.ref) - ref);
      band.var_offset = e.var;
    } else {
      Eigen::MatrixXd X(n, 2);
      Eigen::VectorXd y(n), w(n);
      for (Eigen::Index i = 0; i < n; ++i) {
        const auto& e = pts[static_cast<std::size_t>(i)];
        X(i, 0) = 1.0;
        X(i, 1) = static_cast<double>(static_cast<i128>(e.ref) - ref) / xscale;
        y(i) = y_of(e);
        w(i) = 1.0 / e.var;
      }
      const Eigen::VectorXd sw = w.cwiseSqrt();
      const Eigen::MatrixXd Xw = sw.asDiagonal() * X;
      const Eigen::VectorXd yw = sw.asDiagonal() * y;
      const Eigen::VectorXd beta = Xw.colPivHouseholderQr().solve(yw);
      if (!std::isfinite(beta(0)) || !std::isfinite(beta(1))) return unexpected(errc::non_finite);
      const double rss = (yw - Xw * beta).squaredNorm();
      // With two bursts there is no residual: trust the variance model.
      const double dof = static_cast<double>(n - 2);
      const double sigma2 = n > 2 ? std::max(rss / dof, 1e-6) : 1.0;
      // Residuals of real links are correlated from burst to burst (queues
      // and load last longer than a burst): with lag-1 correlation r > 0 the
      // effective sample size is n·(1 − r)/(1 + r), so the covariance grows
      // by (1 + r)/(1 − r). Without it a slow queueing wander passes for drift.
      const double r1 = lag1_correlation(yw - Xw * beta, rss);
      const Eigen::Matrix2d XtWX = Xw.transpose() * Xw;
      const Eigen::Matrix2d cov = sigma2 * (1.0 + r1) / (1.0 - r1) * XtWX.inverse();
      theta = beta(0);
      rho = beta(1) / xscale;
      band = stat_band{cov(0, 0), cov(0, 1) / xscale, cov(1, 1) / (xscale * xscale),
                       n > 2 ? student_quantile_two_sided(opt.confidence, dof)
                             : normal_quantile_two_sided(opt.confidence)};
    }
    widen_to_hull(band, theta, rho, static_cast<double>(seg->fit.offset - base), q48_to_slope(seg->fit.slope_q48));
    auto sq = slope_to_q48(rho);
    if (!sq || !std::isfinite(theta)) return unexpected(errc::non_finite);
    if (!std::isfinite(band.var_offset) || !std::isfinite(band.cov) || !std::isfinite(band.var_slope))
      return unexpected(errc::non_finite);
    segment s = std::move(*seg);
    s.fit = {base + static_cast<std::int64_t>(std::llround(theta)), *sq};
    // The estimate stays inside its own hard bounds (the hull's polygon).
    detail::clamp_into_bounds(s);
    s.stat = band;
    s.diag.cause = boundary_cause::start;
    s.diag.stats.probes_rejected += sb->dropped + lost;
    model m;
    m.estimator = std::string(name);
    m.segments.push_back(std::move(s));
    return m;
  }
};

static_assert(trace_estimator<regression_estimator>);

/// Add `regression` to `r`. Adding it twice is not an error (the second call
/// does nothing).
template <class = void>
inline expected<void, errc> register_regression(registry& r) {
  if (r.find(regression_estimator::name) != nullptr) return {};
  return r.add({regression_estimator::name, "whole-trace",
                "chrony-style delay-weighted least squares with asymmetry term (Eigen)",
                &detail::fit_trace<regression_estimator>});
}

}  // namespace tsync::estimate
