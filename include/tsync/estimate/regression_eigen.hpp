#pragma once
/// \file
/// Delay-weighted least squares (chrony style) over a whole trace, with Eigen.
///
/// Each probe's midpoint offset `y_i = (t1 + t2)/2 − g` is modelled as
/// `θ + ρ·x_i + α·e_i + noise`, where `x_i = g_i − ref` and `e_i` is the probe's
/// round-trip excess over the trace minimum. The weights follow chrony's
/// `sourcestats.c`: with `d_i = e_i/2`, `sd = median(d)/0.7` (at least 1 ns) and
/// `w_i = (1 + d_i/sd)^-2`, so probes with queueing count quadratically less.
/// The `α` term is chrony's jitter-asymmetry correction: it removes the bias of
/// midpoints when the queueing of one direction dominates, and is clamped to
/// [−1/2, 1/2] (the physically possible range). The statistical interval comes
/// from the weighted residual variance and `(XᵀWX)⁻¹`; the hard interval is the
/// exact hull polygon of the same probes (the fit fails with
/// `errc::infeasible` when no line satisfies causality).
///
/// Include this header only where Eigen is available (link `tsync::eigen`).

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/hull.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/trace.hpp"

namespace tsync::estimate {

/// The weighted regression estimator (see the file comment).
struct regression_estimator {
  static constexpr std::string_view name = "regression";
  /// Fit chrony's jitter-asymmetry term α (see the file comment).
  bool asymmetry_term = true;

  [[nodiscard]] expected<model, errc> fit(std::span<const probe_sample> probes, const fit_options& opt = {}) const {
    auto prep = prepare(probes, opt, true);
    if (!prep) return unexpected(prep.error());
    auto& bursts = prep->bursts;
    // Hard bounds from the hull over the same probes.
    auto seg = detail::hull_segment(bursts, 0, bursts.size() - 1, opt);
    if (!seg) return unexpected(seg.error());
    const std::int64_t ref = seg->ref;
    std::vector<const probe_sample*> ps;
    for (const auto& b : bursts)
      for (const auto& p : b.probes) ps.push_back(&p);
    const auto n = static_cast<Eigen::Index>(ps.size());
    std::int64_t rtt_min = rtt_of(*ps.front());
    for (auto* p : ps) rtt_min = std::min(rtt_min, rtt_of(*p));
    const i128 base = midpoint_offset(*ps[ps.size() / 2]);
    double xscale = 1.0;
    for (auto* p : ps) xscale = std::max(xscale, std::fabs(static_cast<double>(static_cast<i128>(p->g) - ref)));
    std::vector<double> d(ps.size());
    for (std::size_t i = 0; i < ps.size(); ++i) d[i] = static_cast<double>(rtt_of(*ps[i]) - rtt_min) / 2.0;
    const double sd = std::max(1.0, detail::median_of(d) / 0.7);
    double escale = 1.0;
    for (double v : d) escale = std::max(escale, 2.0 * v);

    const bool with_alpha = asymmetry_term && n >= 4 && escale > 1.0;
    const Eigen::Index p = with_alpha ? 3 : 2;
    if (n < p) return unexpected(errc::all_rejected);
    Eigen::MatrixXd X(n, p);
    Eigen::VectorXd y(n), w(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      const auto& q = *ps[static_cast<std::size_t>(i)];
      const auto iu = static_cast<std::size_t>(i);
      X(i, 0) = 1.0;
      X(i, 1) = static_cast<double>(static_cast<i128>(q.g) - ref) / xscale;
      if (with_alpha) X(i, 2) = 2.0 * d[iu] / escale;
      y(i) = static_cast<double>(midpoint_offset(q) - base);
      const double f = 1.0 + d[iu] / sd;
      w(i) = 1.0 / (f * f);
    }
    auto solve = [&](const Eigen::MatrixXd& A, const Eigen::VectorXd& rhs) {
      const Eigen::VectorXd sw = w.cwiseSqrt();
      const Eigen::MatrixXd Aw = sw.asDiagonal() * A;
      const Eigen::VectorXd bw = sw.asDiagonal() * rhs;
      return Eigen::VectorXd(Aw.colPivHouseholderQr().solve(bw));
    };
    Eigen::VectorXd beta = solve(X, y);
    Eigen::MatrixXd Xu = X;
    Eigen::VectorXd yu = y;
    Eigen::Index pu = p;
    if (with_alpha) {
      const double alpha = beta(2) / escale;  // per ns of RTT excess
      if (!(std::fabs(alpha) <= 0.5)) {
        // Clamp α to the physical range and refit θ, ρ with it fixed.
        const double ac = std::clamp(std::isfinite(alpha) ? alpha : 0.0, -0.5, 0.5);
        for (Eigen::Index i = 0; i < n; ++i) yu(i) = y(i) - ac * 2.0 * d[static_cast<std::size_t>(i)];
        Xu = X.leftCols(2);
        pu = 2;
        const Eigen::VectorXd b2 = solve(Xu, yu);
        beta = Eigen::VectorXd::Zero(3);
        beta(0) = b2(0);
        beta(1) = b2(1);
        beta(2) = ac * escale;
      }
    }
    for (Eigen::Index i = 0; i < beta.size(); ++i)
      if (!std::isfinite(beta(i))) return unexpected(errc::non_finite);
    const Eigen::VectorXd r = yu - Xu * beta.head(pu);
    double rss = 0, wsum = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      rss += w(i) * r(i) * r(i);
      wsum += w(i);
    }
    const double dof = static_cast<double>(std::max<Eigen::Index>(1, n - pu));
    const double sigma2 = rss / dof;
    const Eigen::MatrixXd XtWX = Xu.transpose() * w.asDiagonal() * Xu;
    const Eigen::MatrixXd cov = sigma2 * XtWX.ldlt().solve(Eigen::MatrixXd::Identity(pu, pu));

    const double theta = beta(0);
    const double rho = beta(1) / xscale;
    auto sq = slope_to_q48(rho);
    if (!sq || !std::isfinite(theta)) return unexpected(errc::non_finite);
    segment s = std::move(*seg);
    s.fit = {static_cast<std::int64_t>(base + static_cast<i128>(std::llround(theta))), *sq};
    stat_band band{cov(0, 0), cov(0, 1) / xscale, cov(1, 1) / (xscale * xscale),
                   normal_quantile_two_sided(opt.confidence)};
    if (!std::isfinite(band.var_offset) || !std::isfinite(band.cov) || !std::isfinite(band.var_slope))
      return unexpected(errc::non_finite);
    s.stat = band;
    s.diag.cause = boundary_cause::start;
    model m;
    m.estimator = std::string(name);
    m.segments.push_back(std::move(s));
    (void)wsum;
    return m;
  }
};

static_assert(trace_estimator<regression_estimator>);

}  // namespace tsync::estimate
