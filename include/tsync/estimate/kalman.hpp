#pragma once
/// \file
/// `kalman`: a two-state (offset, frequency) Kalman filter with a
/// Rauch–Tung–Striebel smoother over the per-burst envelope measurements.
///
/// Each burst gives one measurement, its bias-corrected envelope centre with
/// the variance model of envelope.hpp (see there). The clock is modelled as an
/// integrated random walk: the frequency performs a random walk of intensity
/// `q` ((ns/s)²/s), the offset integrates it. The smoother is then the optimal
/// (cubic-spline-like) interpolation for random-walk frequency wander. `q` and
/// a scale of the measurement variances are chosen by maximum likelihood over
/// a logarithmic grid (the prediction-error decomposition, the first two
/// innovations excluded as they carry the diffuse prior). At a clock step
/// found by the change detector the state is released (its variance
/// inflated), and detected asymmetry changes are undone as in `regression`.
///
/// The model interpolates linearly between knots: the bursts and `substeps − 1`
/// evenly spaced times between consecutive bursts, where the smoother also
/// gives the offset and its variance. The statistical interval is the
/// posterior standard deviation times the normal quantile of `confidence`;
/// the hard interval is the per-burst causality interval interpolated linearly
/// between bursts (as for the per-burst estimators: it assumes the map is
/// affine between two bursts), and held with `max_drift` widening outside.
/// No Eigen needed.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/envelope.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/trace.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

namespace detail {

using mat2 = std::array<double, 4>;  // row-major [a b; c d]
using vec2 = std::array<double, 2>;

[[nodiscard]] inline mat2 mul(const mat2& x, const mat2& y) {
  return {x[0] * y[0] + x[1] * y[2], x[0] * y[1] + x[1] * y[3], x[2] * y[0] + x[3] * y[2], x[2] * y[1] + x[3] * y[3]};
}
[[nodiscard]] inline mat2 transpose(const mat2& x) { return {x[0], x[2], x[1], x[3]}; }
[[nodiscard]] inline mat2 add(const mat2& x, const mat2& y) { return {x[0] + y[0], x[1] + y[1], x[2] + y[2], x[3] + y[3]}; }
[[nodiscard]] inline mat2 sub(const mat2& x, const mat2& y) { return {x[0] - y[0], x[1] - y[1], x[2] - y[2], x[3] - y[3]}; }
[[nodiscard]] inline vec2 mul(const mat2& x, const vec2& v) { return {x[0] * v[0] + x[1] * v[1], x[2] * v[0] + x[3] * v[1]}; }
[[nodiscard]] inline mat2 inverse(const mat2& x) {
  const double det = x[0] * x[3] - x[1] * x[2];
  return {x[3] / det, -x[1] / det, -x[2] / det, x[0] / det};
}

/// One knot of the smoother: a time (s, relative to the first burst), an
/// optional measurement (ns) with its variance, and whether the state is
/// released there (a clock step).
struct kalman_knot {
  double t = 0;
  bool has_z = false;
  double z = 0, r = 0;
  bool release = false;
};

struct kalman_result {
  std::vector<vec2> x;  // smoothed (offset ns, frequency ns/s)
  std::vector<mat2> p;
  double loglik = 0;
};

/// Filter (and, with `smooth`, RTS-smooth) the knots with frequency random
/// walk intensity `q` and measurement variances scaled by `scale`.
[[nodiscard]] inline kalman_result kalman_run(const std::vector<kalman_knot>& kn, double q, double scale, bool smooth) {
  const std::size_t n = kn.size();
  // Vague prior: (1 ms)² and (100 ppm)² around the rough de-trended line; far
  // wider than any data here, yet not so wide that the smoother cancels digits.
  constexpr double big_theta = 1e12, big_rho = 1e10;
  std::vector<vec2> xf(n), xp(n);
  std::vector<mat2> pf(n), pp(n);
  vec2 x{0, 0};
  mat2 p{big_theta, 0, 0, big_rho};
  kalman_result res;
  int updates = 0;
  // Start at the first measurement with its own variance for the offset and
  // a frequency prior from the first two measurements widened a hundredfold
  // (so that counting the second measurement again below is negligible),
  // rather than from the vague prior: smoothing a vague prior back to the
  // knots between them would cancel most digits.
  std::size_t start = 0, skip = n;
  {
    std::size_t m0 = n, m1 = n;
    for (std::size_t k = 0; k < n && m1 == n; ++k)
      if (kn[k].has_z) (m0 == n ? m0 : m1) = k;
    bool released = false;
    for (std::size_t k = m0 + 1; m1 < n && k <= m1; ++k) released = released || kn[k].release;
    if (m1 < n && !released && kn[m1].t > kn[m0].t) {
      const double dt = kn[m1].t - kn[m0].t;
      const double r0 = kn[m0].r * scale, r1 = kn[m1].r * scale;
      x = {kn[m0].z, (kn[m1].z - kn[m0].z) / dt};
      p = {r0, 0, 0, 100 * (r0 + r1) / (dt * dt) + q * dt};
      start = m0;
      skip = m0;
      updates = 1;
    }
  }
  // Knots before the start: the initial line extrapolated back (no process
  // noise; in practice the first knot is the first burst).
  for (std::size_t k = 0; k < start; ++k) {
    const double dt = kn[k].t - kn[start].t;
    const mat2 f{1, dt, 0, 1};
    xf[k] = xp[k] = mul(f, x);
    pf[k] = pp[k] = mul(mul(f, p), transpose(f));
  }
  for (std::size_t k = start; k < n; ++k) {
    if (k > start) {
      const double dt = kn[k].t - kn[k - 1].t;
      const mat2 f{1, dt, 0, 1};
      x = mul(f, x);
      p = add(mul(mul(f, p), transpose(f)), mat2{q * dt * dt * dt / 3, q * dt * dt / 2, q * dt * dt / 2, q * dt});
    }
    if (kn[k].release) {
      p[0] += big_theta;
      p[3] += big_rho;
      updates = 0;
    }
    xp[k] = x;
    pp[k] = p;
    if (kn[k].has_z && k != skip) {
      const double r = kn[k].r * scale;
      const double s = p[0] + r;
      const double nu = kn[k].z - x[0];
      if (updates >= 2) res.loglik -= 0.5 * (std::log(s) + nu * nu / s);
      ++updates;
      const vec2 kg{p[0] / s, p[2] / s};
      x = {x[0] + kg[0] * nu, x[1] + kg[1] * nu};
      // Joseph form for symmetry and positivity: (I − KH) P (I − KH)ᵀ + K r Kᵀ.
      const mat2 a{1 - kg[0], 0, -kg[1], 1};
      p = add(mul(mul(a, p), transpose(a)), mat2{kg[0] * kg[0] * r, kg[0] * kg[1] * r, kg[0] * kg[1] * r, kg[1] * kg[1] * r});
    }
    xf[k] = x;
    pf[k] = p;
  }
  if (!smooth) return res;
  res.x.assign(n, {});
  res.p.assign(n, {});
  res.x[n - 1] = xf[n - 1];
  res.p[n - 1] = pf[n - 1];
  for (std::size_t k = n - 1; k-- > 0;) {
    const double dt = kn[k + 1].t - kn[k].t;
    const mat2 f{1, dt, 0, 1};
    if (kn[k + 1].release) {
      // Nothing flows back across a released state.
      res.x[k] = xf[k];
      res.p[k] = pf[k];
      continue;
    }
    const mat2 c = mul(mul(pf[k], transpose(f)), inverse(pp[k + 1]));
    const vec2 d{res.x[k + 1][0] - xp[k + 1][0], res.x[k + 1][1] - xp[k + 1][1]};
    const vec2 cd = mul(c, d);
    res.x[k] = {xf[k][0] + cd[0], xf[k][1] + cd[1]};
    res.p[k] = add(pf[k], mul(mul(c, sub(res.p[k + 1], pp[k + 1])), transpose(c)));
  }
  return res;
}

}  // namespace detail

/// The Kalman/RTS estimator (see the file comment).
struct kalman_estimator {
  static constexpr std::string_view name = "kalman";
  /// Knots per burst interval (>= 1): the smoother's offset and variance are
  /// evaluated at `substeps − 1` times between consecutive bursts.
  int substeps = 4;

  [[nodiscard]] expected<model, errc> fit(std::span<const probe_sample> probes, const fit_options& opt = {}) const {
    auto sb = detail::screen_bursts(probes, opt, segmented_jump_gate);
    if (!sb) return unexpected(sb.error());
    std::uint64_t lost = 0;
    auto pts = envelope_points(sb->bursts, sb->slope, opt, lost, true);
    if (pts.empty()) return unexpected(errc::all_rejected);
    const auto shift = detail::asymmetry_centre_shifts(sb->changes, sb->summary);
    const double slope = sb->slope;
    const std::int64_t base = pts.front().base;
    const std::int64_t t0 = pts.front().ref;
    const double z = normal_quantile_two_sided(opt.confidence);

    // Knots: bursts (with measurements, de-trended with the rough slope) and
    // evenly spaced times between them.
    std::vector<detail::kalman_knot> kn;
    std::vector<std::int64_t> knot_time;
    std::vector<int> knot_burst;  // index into pts, or −1
    const int sub = std::max(1, substeps);
    for (std::size_t i = 0; i < pts.size(); ++i) {
      const auto& e = pts[i];
      if (i > 0) {
        const std::int64_t a = pts[i - 1].ref, b = e.ref;
        for (int j = 1; j < sub; ++j) {
          const std::int64_t t =
              a + static_cast<std::int64_t>(floor_div((static_cast<i128>(b) - a) * j, static_cast<i128>(sub)));
          if (t <= knot_time.back() || t >= b) continue;
          kn.push_back({static_cast<double>(static_cast<i128>(t) - t0) * 1e-9, false, 0, 0, false});
          knot_time.push_back(t);
          knot_burst.push_back(-1);
        }
      }
      const double dx = static_cast<double>(static_cast<i128>(e.ref) - t0);
      const double y = static_cast<double>(e.base - base) + e.centre + shift[e.index] - slope * dx;
      kn.push_back({dx * 1e-9, true, y, e.var, i > 0 && sb->changes[e.index].kind == detail::change::step});
      knot_time.push_back(e.ref);
      knot_burst.push_back(static_cast<int>(i));
    }
    // Maximum likelihood over the grid of q and the variance scale.
    double best_q = 0, best_s = 1, best_ll = -std::numeric_limits<double>::infinity();
    for (int qi = -1; qi <= 20; ++qi) {
      const double q = qi < 0 ? 0.0 : std::pow(10.0, -4.0 + 0.5 * qi);
      for (double s : {0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0}) {
        const double ll = detail::kalman_run(kn, q, s, false).loglik;
        if (std::isfinite(ll) && ll > best_ll) {
          best_ll = ll;
          best_q = q;
          best_s = s;
        }
      }
    }
    const auto res = detail::kalman_run(kn, best_q, best_s, true);

    std::vector<burst_estimate> est;
    est.reserve(kn.size());
    std::size_t prev_burst = 0;
    for (std::size_t k = 0; k < kn.size(); ++k) {
      burst_estimate be;
      be.ref = knot_time[k];
      const double dx = static_cast<double>(static_cast<i128>(be.ref) - t0);
      const double off = static_cast<double>(base) + res.x[k][0] + slope * dx;
      if (!std::isfinite(off) || !std::isfinite(res.p[k][0])) return unexpected(errc::non_finite);
      if (knot_burst[k] >= 0) {
        const auto& e = pts[static_cast<std::size_t>(knot_burst[k])];
        prev_burst = static_cast<std::size_t>(knot_burst[k]);
        be.hard = e.hard;
        be.stats = e.stats;
        be.burst = e.burst;
      } else {
        // Between two bursts: their hard intervals interpolated, rounded outward.
        const auto& a = pts[prev_burst];
        const auto& b = pts[prev_burst + 1];
        const double f = static_cast<double>(static_cast<i128>(be.ref) - a.ref) /
                         static_cast<double>(static_cast<i128>(b.ref) - a.ref);
        const double lo = static_cast<double>(a.hard.lo) + f * static_cast<double>(b.hard.lo - a.hard.lo);
        const double hi = static_cast<double>(a.hard.hi) + f * static_cast<double>(b.hard.hi - a.hard.hi);
        be.hard = {static_cast<std::int64_t>(std::floor(lo)) - 1, static_cast<std::int64_t>(std::ceil(hi)) + 1};
        be.burst = a.burst;
      }
      const double o = std::clamp(off, static_cast<double>(be.hard.lo), static_cast<double>(be.hard.hi));
      be.offset = static_cast<std::int64_t>(std::llround(o));
      be.stat_half = z * std::sqrt(std::max(res.p[k][0], 0.0));
      est.push_back(be);
    }
    return interpolate_bursts(std::move(est), std::string(name), opt, lost + sb->dropped);
  }
};

static_assert(trace_estimator<kalman_estimator>);

}  // namespace tsync::estimate
