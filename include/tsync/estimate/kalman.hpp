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
#include <utility>
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

/// The filter's state at its first measurement.
struct kalman_start {
  vec2 x{0, 0};
  mat2 p{};
  std::size_t start = 0, skip = 0;
  int updates = 0;
};

// Vague prior: (1 ms)² and (100 ppm)² around the rough de-trended line; far
// wider than any data here, yet not so wide that the smoother cancels digits.
inline constexpr double kalman_big_theta = 1e12, kalman_big_rho = 1e10;

/// Start at the first measurement with its own variance for the offset and
/// a frequency prior from the first two measurements widened a hundredfold
/// (so that counting the second measurement again is negligible), rather
/// than from the vague prior: smoothing a vague prior back to the knots
/// between them would cancel most digits.
template <class = void>
[[nodiscard]] inline kalman_start kalman_initial(const std::vector<kalman_knot>& kn, double q, double scale) {
  const std::size_t n = kn.size();
  kalman_start st{{0, 0}, {kalman_big_theta, 0, 0, kalman_big_rho}, 0, n, 0};
  std::size_t m0 = n, m1 = n;
  for (std::size_t k = 0; k < n && m1 == n; ++k)
    if (kn[k].has_z) (m0 == n ? m0 : m1) = k;
  bool released = false;
  for (std::size_t k = m0 + 1; m1 < n && k <= m1; ++k) released = released || kn[k].release;
  if (m1 < n && !released && kn[m1].t > kn[m0].t) {
    const double dt = kn[m1].t - kn[m0].t;
    const double r0 = kn[m0].r * scale, r1 = kn[m1].r * scale;
    st.x = {kn[m0].z, (kn[m1].z - kn[m0].z) / dt};
    st.p = {r0, 0, 0, 100 * (r0 + r1) / (dt * dt) + q * dt};
    st.start = m0;
    st.skip = m0;
    st.updates = 1;
  }
  return st;
}

/// One measurement update (Joseph form for symmetry and positivity:
/// (I − KH) P (I − KH)ᵀ + K r Kᵀ); returns the innovation's log-likelihood term.
inline double kalman_update(vec2& x, mat2& p, double z, double r) {
  const double s = p[0] + r;
  const double nu = z - x[0];
  const vec2 kg{p[0] / s, p[2] / s};
  x = {x[0] + kg[0] * nu, x[1] + kg[1] * nu};
  const mat2 a{1 - kg[0], 0, -kg[1], 1};
  p = add(mul(mul(a, p), transpose(a)), mat2{kg[0] * kg[0] * r, kg[0] * kg[1] * r, kg[0] * kg[1] * r, kg[1] * kg[1] * r});
  return -0.5 * (std::log(s) + nu * nu / s);
}

/// The filtered (`xf`, `pf`) and predicted (`xp`, `pp`) states of every knot.
struct kalman_pass {
  std::vector<vec2> xf, xp;
  std::vector<mat2> pf, pp;
};

/// The Rauch–Tung–Striebel smoother over a forward pass.
template <class = void>
inline void kalman_smooth(const std::vector<kalman_knot>& kn, const kalman_pass& fw, kalman_result& res) {
  const std::size_t n = kn.size();
  res.x.assign(n, {});
  res.p.assign(n, {});
  res.x[n - 1] = fw.xf[n - 1];
  res.p[n - 1] = fw.pf[n - 1];
  for (std::size_t k = n - 1; k > 0;) {
    --k;  // k = n - 2 ... 0, without a last decrement that wraps
    if (kn[k + 1].release) {
      // Nothing flows back across a released state.
      res.x[k] = fw.xf[k];
      res.p[k] = fw.pf[k];
      continue;
    }
    const double dt = kn[k + 1].t - kn[k].t;
    const mat2 f{1, dt, 0, 1};
    const mat2 c = mul(mul(fw.pf[k], transpose(f)), inverse(fw.pp[k + 1]));
    const vec2 d{res.x[k + 1][0] - fw.xp[k + 1][0], res.x[k + 1][1] - fw.xp[k + 1][1]};
    const vec2 cd = mul(c, d);
    res.x[k] = {fw.xf[k][0] + cd[0], fw.xf[k][1] + cd[1]};
    res.p[k] = add(fw.pf[k], mul(mul(c, sub(res.p[k + 1], fw.pp[k + 1])), transpose(c)));
  }
}

/// Filter (and, with `smooth`, RTS-smooth) the knots with frequency random
/// walk intensity `q` and measurement variances scaled by `scale`.
template <class = void>
[[nodiscard]] inline kalman_result kalman_run(const std::vector<kalman_knot>& kn, double q, double scale, bool smooth) {
  const std::size_t n = kn.size();
  kalman_pass fw{std::vector<vec2>(n), std::vector<vec2>(n), std::vector<mat2>(n), std::vector<mat2>(n)};
  auto [x, p, start, skip, updates] = kalman_initial(kn, q, scale);
  kalman_result res;
  // Knots before the start: the initial line extrapolated back (no process
  // noise; in practice the first knot is the first burst).
  for (std::size_t k = 0; k < start; ++k) {
    const mat2 f{1, kn[k].t - kn[start].t, 0, 1};
    fw.xf[k] = fw.xp[k] = mul(f, x);
    fw.pf[k] = fw.pp[k] = mul(mul(f, p), transpose(f));
  }
  for (std::size_t k = start; k < n; ++k) {
    if (k > start) {
      const double dt = kn[k].t - kn[k - 1].t;
      const mat2 f{1, dt, 0, 1};
      x = mul(f, x);
      p = add(mul(mul(f, p), transpose(f)), mat2{q * dt * dt * dt / 3, q * dt * dt / 2, q * dt * dt / 2, q * dt});
    }
    if (kn[k].release) {
      p[0] += kalman_big_theta;
      p[3] += kalman_big_rho;
      updates = 0;
    }
    fw.xp[k] = x;
    fw.pp[k] = p;
    if (kn[k].has_z && k != skip) {
      const double ll = kalman_update(x, p, kn[k].z, kn[k].r * scale);
      if (updates >= 2) res.loglik += ll;
      ++updates;
    }
    fw.xf[k] = x;
    fw.pf[k] = p;
  }
  if (smooth) kalman_smooth(kn, fw, res);
  return res;
}

}  // namespace detail

/// The Kalman/RTS estimator (see the file comment).
struct kalman_estimator {
  static constexpr std::string_view name = "kalman";
  /// Knots per burst interval (>= 1): the smoother's offset and variance are
  /// evaluated at `substeps − 1` times between consecutive bursts.
  int substeps = 4;

  template <class = void>
  [[nodiscard]] expected<model, errc> fit(std::span<const probe_sample> probes, const fit_options& opt = {}) const {
    auto sb = detail::screen_bursts(probes, opt, segmented_jump_gate);
    if (!sb) return unexpected(sb.error());
    std::uint64_t lost = 0;
    auto pts = envelope_points(sb->bursts, sb->slope, opt, lost, true);
    if (pts.empty()) return unexpected(errc::all_rejected);
    const auto g = knots(pts, *sb);
    const auto [q, scale] = most_likely(g.kn);
    const auto res = detail::kalman_run(g.kn, q, scale, true);
    auto est = estimates(g, pts, res, sb->slope, normal_quantile_two_sided(opt.confidence));
    if (!est) return unexpected(est.error());
    return interpolate_bursts(std::move(*est), std::string(name), opt, lost + sb->dropped);
  }

 private:
  /// The knots: bursts (with measurements, de-trended with the rough slope)
  /// and evenly spaced times between them.
  struct knot_grid {
    std::vector<detail::kalman_knot> kn;
    std::vector<std::int64_t> time;
    std::vector<int> burst;  // index into the envelope points, or −1
    std::int64_t base = 0, t0 = 0;
  };

  template <class Points, class Screened>
  [[nodiscard]] knot_grid knots(const Points& pts, const Screened& sb) const {
    knot_grid g;
    g.base = pts.front().base;
    g.t0 = pts.front().ref;
    const auto shift = detail::asymmetry_centre_shifts(sb.changes, sb.summary);
    const int sub = std::max(1, substeps);
    for (std::size_t i = 0; i < pts.size(); ++i) {
      const auto& e = pts[i];
      if (i > 0) {
        const std::int64_t a = pts[i - 1].ref, b = e.ref;
        for (int j = 1; j < sub; ++j) {
          const std::int64_t t =
              a + static_cast<std::int64_t>(floor_div((static_cast<i128>(b) - a) * j, static_cast<i128>(sub)));
          if (t <= g.time.back() || t >= b) continue;
          g.kn.push_back({static_cast<double>(static_cast<i128>(t) - g.t0) * 1e-9, false, 0, 0, false});
          g.time.push_back(t);
          g.burst.push_back(-1);
        }
      }
      const double dx = static_cast<double>(static_cast<i128>(e.ref) - g.t0);
      const double y = static_cast<double>(e.base - g.base) + e.centre + shift[e.index] - sb.slope * dx;
      g.kn.push_back({dx * 1e-9, true, y, e.var, i > 0 && sb.changes[e.index].kind == detail::change::step});
      g.time.push_back(e.ref);
      g.burst.push_back(static_cast<int>(i));
    }
    return g;
  }

  /// Maximum likelihood over the grid of q and the variance scale.
  template <class = void>
  [[nodiscard]] static std::pair<double, double> most_likely(const std::vector<detail::kalman_knot>& kn) {
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
    return {best_q, best_s};
  }

  /// One estimate per knot from the smoothed states, each inside its hard
  /// interval (a burst's own, or between two bursts theirs interpolated and rounded outward).
  template <class Points>
  [[nodiscard]] static expected<std::vector<burst_estimate>, errc> estimates(const knot_grid& g, const Points& pts,
                                                                            const detail::kalman_result& res,
                                                                            double slope, double z) {
    std::vector<burst_estimate> est;
    est.reserve(g.kn.size());
    std::size_t prev_burst = 0;
    for (std::size_t k = 0; k < g.kn.size(); ++k) {
      burst_estimate be;
      be.ref = g.time[k];
      const double dx = static_cast<double>(static_cast<i128>(be.ref) - g.t0);
      const double off = static_cast<double>(g.base) + res.x[k][0] + slope * dx;
      if (!std::isfinite(off) || !std::isfinite(res.p[k][0])) return unexpected(errc::non_finite);
      if (g.burst[k] >= 0) {
        const auto& e = pts[static_cast<std::size_t>(g.burst[k])];
        prev_burst = static_cast<std::size_t>(g.burst[k]);
        be.hard = e.hard;
        be.stats = e.stats;
        be.burst = e.burst;
      } else {
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
    return est;
  }
};

static_assert(trace_estimator<kalman_estimator>);

}  // namespace tsync::estimate
