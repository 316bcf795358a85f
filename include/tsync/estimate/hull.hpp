#pragma once
/// \file
/// The convex-hull (feasible-band) fit of an affine clock map, in exact integer
/// geometry.
///
/// With `x = g − ref` each probe says `t1 − g <= θ + ρ·x <= t2 − g`, where θ is
/// the offset (host − guest) at `ref` and ρ the drift. The line must pass above
/// the upper hull of the points `(x, t1 − g)` and below the lower hull of the
/// points `(x, t2 − g)`; with `|ρ| <= max_drift` the feasible `(θ, ρ)` set is a
/// convex polygon. All orientation tests and vertex coordinates are exact
/// (128-bit cross products on re-centred coordinates, exact rationals for the
/// vertices). The hard interval at any time `t` is the range of
/// `θ + ρ·(t − ref)` over the polygon's vertices.
///
/// The point estimate assumes what the polygon does not: that the minimum
/// one-way delays are constant. (The polygon also admits lines that tilt
/// across the band, explained by an asymmetry that drifts linearly; its
/// centroid is therefore a poor estimate.) Each envelope then determines the
/// drift on its own: the slope of the upper hull of the lower bounds, and of
/// the lower hull of the upper bounds, at the mean guest time — the
/// linear-programming skew estimate, the maximum-likelihood estimate under
/// exponential queueing. The two slopes are averaged with weights
/// 1/(mean gap to the envelope)², clamped to the feasible slope range, and the
/// offset is the centre of the feasible interval at that slope.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// A vertex of the feasible polygon: θ = theta_num / den (offset at ref, ns,
/// relative to `hull_fit::base`) and ρ = rho_num / den.
struct hull_vertex {
  i128 theta_num = 0;
  i128 rho_num = 0;
  i128 den = 1;
};

/// Result of a hull fit.
struct hull_fit {
  bool feasible = false;
  std::int64_t ref = 0;            ///< reference guest time
  std::int64_t base = 0;           ///< offsets are relative to this value (ns)
  std::int64_t x_first = 0;        ///< first and last guest time of the data, relative to ref
  std::int64_t x_last = 0;
  std::vector<hull_vertex> polygon;  ///< boundary in order (may repeat points)
  line centre{};                   ///< centroid line (absolute offset at ref)
  double centre_theta = 0;         ///< centroid, unrounded (relative to base)
  double centre_rho = 0;
  fit_stats stats{};
  std::vector<std::size_t> dropped;  ///< indices (into the input) of probes dropped to restore feasibility

  /// The polygon's vertices as bound lines (absolute offsets at ref): lower
  /// lines rounded down, upper lines rounded up.
  [[nodiscard]] std::vector<line> bound_lines(bool upper) const {
    std::vector<line> out;
    for (const auto& v : polygon) {
      const i128 th = upper ? ceil_div(v.theta_num, v.den) : floor_div(v.theta_num, v.den);
      const i128 sl = floor_div((v.rho_num << slope_frac_bits) + v.den / 2, v.den);
      line l{static_cast<std::int64_t>(th + base), static_cast<std::int64_t>(sl)};
      if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
    }
    return out;
  }
};

namespace detail {

struct hpt {
  i128 x, y;
  std::size_t idx;
};
struct rat {
  i128 n, d;  // d > 0
};
[[nodiscard]] inline bool rat_less(const rat& a, const rat& b) noexcept { return a.n * b.d < b.n * a.d; }
[[nodiscard]] inline bool rat_eq(const rat& a, const rat& b) noexcept { return a.n * b.d == b.n * a.d; }
[[nodiscard]] inline i128 cross(const hpt& o, const hpt& p, const hpt& q) noexcept {
  return (p.x - o.x) * (q.y - o.y) - (p.y - o.y) * (q.x - o.x);
}

/// Upper hull (for `upper`) or lower hull of points sorted by x; for equal x
/// only the extreme y is kept.
inline std::vector<hpt> half_hull(std::vector<hpt> pts, bool upper) {
  std::sort(pts.begin(), pts.end(), [upper](const hpt& a, const hpt& b) {
    if (a.x != b.x) return a.x < b.x;
    return upper ? a.y > b.y : a.y < b.y;
  });
  std::vector<hpt> h;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    if (i > 0 && pts[i].x == pts[i - 1].x) continue;  // the first of equal x is the extreme
    while (h.size() >= 2) {
      const i128 c = cross(h[h.size() - 2], h.back(), pts[i]);
      if (upper ? c >= 0 : c <= 0) h.pop_back();
      else break;
    }
    h.push_back(pts[i]);
  }
  return h;
}

struct band_solver {
  std::vector<hpt> ua;  // upper hull of lower-bound points; edge slopes decreasing
  std::vector<hpt> lb;  // lower hull of upper-bound points; edge slopes increasing
  rat dmax;             // max drift as a rational

  [[nodiscard]] rat edge(const std::vector<hpt>& h, std::size_t j) const { return {h[j + 1].y - h[j].y, h[j + 1].x - h[j].x}; }
  // Active vertex of F(ρ) = max (a − ρx): `left` picks the piece just below ρ.
  [[nodiscard]] std::size_t arg_f(const rat& r, bool left) const {
    std::size_t lo = 0, hi = ua.size() - 1;  // search first j in [0, k) with s_j < r (left) or s_j <= r
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      const rat s = edge(ua, mid);
      const bool ok = left ? rat_less(s, r) : !rat_less(r, s);
      if (ok) hi = mid; else lo = mid + 1;
    }
    return lo;
  }
  // Active vertex of G(ρ) = min (b − ρx).
  [[nodiscard]] std::size_t arg_g(const rat& r, bool left) const {
    std::size_t lo = 0, hi = lb.size() - 1;  // first j with t_j >= r (left) or t_j > r
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      const rat t = edge(lb, mid);
      const bool ok = left ? !rat_less(t, r) : rat_less(r, t);
      if (ok) hi = mid; else lo = mid + 1;
    }
    return lo;
  }
  // θ numerators over r.d.
  [[nodiscard]] i128 f_num(const rat& r) const { const auto& p = ua[arg_f(r, false)]; return p.y * r.d - r.n * p.x; }
  [[nodiscard]] i128 g_num(const rat& r) const { const auto& p = lb[arg_g(r, false)]; return p.y * r.d - r.n * p.x; }
};

}  // namespace detail

/// Fit the band to the probes (already screened; see `prepare`). `ref` is the
/// reference guest time. Errors: `empty_input`, `out_of_range` (coordinates
/// beyond ±2^52 ns from the reference), `infeasible` (no line satisfies the
/// constraints even after dropping `max_soft_reject` of the probes).
[[nodiscard]] inline expected<hull_fit, errc> fit_hull(std::span<const probe_sample> probes, std::int64_t ref,
                                                      const fit_options& opt) {
  using detail::hpt;
  using detail::rat;
  if (probes.empty()) return unexpected(errc::empty_input);
  hull_fit out;
  out.ref = ref;
  out.base = lower_bound_of(probes[probes.size() / 2]);
  constexpr i128 lim = static_cast<i128>(1) << 52;
  std::vector<hpt> pa, pb;
  pa.reserve(probes.size());
  pb.reserve(probes.size());
  i128 xmin = lim, xmax = -lim;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const auto& p = probes[i];
    const i128 x = static_cast<i128>(p.g) - ref;
    const i128 a = static_cast<i128>(lower_bound_of(p)) - out.base;
    const i128 b = static_cast<i128>(upper_bound_of(p)) - out.base;
    if (x <= -lim || x >= lim || a <= -lim || a >= lim || b <= -lim || b >= lim) return unexpected(errc::out_of_range);
    pa.push_back({x, a, i});
    pb.push_back({x, b, i});
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
  }
  out.x_first = static_cast<std::int64_t>(xmin);
  out.x_last = static_cast<std::int64_t>(xmax);
  const auto dq = slope_to_q48(opt.max_drift);
  if (!dq) return unexpected(errc::non_finite);
  const rat dmax{*dq, static_cast<i128>(1) << slope_frac_bits};
  const rat dmin{-*dq, dmax.d};

  std::vector<char> alive(probes.size(), 1);
  const auto budget = static_cast<std::size_t>(opt.max_soft_reject * static_cast<double>(probes.size()));
  detail::band_solver sv;
  sv.dmax = dmax;
  std::vector<rat> cand;
  while (true) {
    std::vector<hpt> qa, qb;
    for (std::size_t i = 0; i < probes.size(); ++i)
      if (alive[i]) {
        qa.push_back(pa[i]);
        qb.push_back(pb[i]);
      }
    if (qa.empty()) return unexpected(errc::infeasible);
    sv.ua = detail::half_hull(std::move(qa), true);
    sv.lb = detail::half_hull(std::move(qb), false);
    cand.clear();
    cand.push_back(dmin);
    cand.push_back(dmax);
    for (std::size_t j = 0; j + 1 < sv.ua.size(); ++j) cand.push_back(sv.edge(sv.ua, j));
    for (std::size_t j = 0; j + 1 < sv.lb.size(); ++j) cand.push_back(sv.edge(sv.lb, j));
    std::sort(cand.begin(), cand.end(), detail::rat_less);
    cand.erase(std::unique(cand.begin(), cand.end(), detail::rat_eq), cand.end());
    std::vector<rat> c2;
    for (const auto& c : cand)
      if (!detail::rat_less(c, dmin) && !detail::rat_less(dmax, c)) c2.push_back(c);
    cand.swap(c2);
    // H(c) = G(c) − F(c), compared through its numerator over c.d (> 0).
    // Feasible iff H >= 0 at some candidate (exact sign; d > 0). Otherwise the
    // least-violated slope (compared approximately: it only picks what to drop).
    std::size_t best = 0;
    bool ok = false;
    long double best_h = 0;
    for (std::size_t i = 0; i < cand.size(); ++i) {
      const i128 hn = sv.g_num(cand[i]) - sv.f_num(cand[i]);
      if (hn >= 0) ok = true;
      const long double hv = static_cast<long double>(hn) / static_cast<long double>(cand[i].d);
      if (i == 0 || hv > best_h) {
        best = i;
        best_h = hv;
      }
    }
    if (ok) break;
    // Infeasible: drop the two probes that bind at the least-violated slope.
    const std::size_t fa = sv.ua[sv.arg_f(cand[best], false)].idx;
    const std::size_t gb = sv.lb[sv.arg_g(cand[best], false)].idx;
    if (out.dropped.size() + 2 > budget) return unexpected(errc::infeasible);
    alive[fa] = 0;
    alive[gb] = 0;
    out.dropped.push_back(fa);
    if (gb != fa) out.dropped.push_back(gb);
  }
  // Feasible slope range [rho_lo, rho_hi].
  std::size_t L = 0, R = cand.size() - 1;
  std::vector<i128> h(cand.size());
  for (std::size_t i = 0; i < cand.size(); ++i) h[i] = sv.g_num(cand[i]) - sv.f_num(cand[i]);
  while (h[L] < 0) ++L;
  while (h[R] < 0) --R;
  auto crossing = [&](const rat& at, bool left, const rat& fallback) -> rat {
    const auto& pf = sv.ua[sv.arg_f(at, left)];
    const auto& pg = sv.lb[sv.arg_g(at, left)];
    i128 n = pg.y - pf.y, d = pg.x - pf.x;
    if (d == 0) return fallback;
    if (d < 0) { n = -n; d = -d; }
    return {n, d};
  };
  const rat rho_lo = L > 0 ? crossing(cand[L], true, cand[L]) : cand[L];
  const rat rho_hi = R + 1 < cand.size() ? crossing(cand[R], false, cand[R]) : cand[R];
  std::vector<rat> rhos{rho_lo};
  for (std::size_t i = L; i <= R; ++i)
    if (detail::rat_less(rho_lo, cand[i]) && detail::rat_less(cand[i], rho_hi)) rhos.push_back(cand[i]);
  if (detail::rat_less(rho_lo, rho_hi)) rhos.push_back(rho_hi);
  for (const auto& r : rhos) out.polygon.push_back({sv.f_num(r), r.n, r.d});
  for (auto it = rhos.rbegin(); it != rhos.rend(); ++it) out.polygon.push_back({sv.g_num(*it), it->n, it->d});
  out.feasible = true;

  // Point estimate: the envelope tangents (see the file comment).
  long double sum_x = 0;
  std::size_t n_alive = 0;
  for (std::size_t i = 0; i < probes.size(); ++i)
    if (alive[i]) {
      sum_x += static_cast<long double>(pa[i].x);
      ++n_alive;
    }
  const long double xbar = sum_x / static_cast<long double>(n_alive);
  auto tangent = [&](const std::vector<hpt>& hh) -> std::optional<long double> {
    if (hh.size() < 2) return std::nullopt;
    std::size_t j = 0;
    while (j + 2 < hh.size() && static_cast<long double>(hh[j + 1].x) < xbar) ++j;
    const rat e = sv.edge(hh, j);
    return static_cast<long double>(e.n) / static_cast<long double>(e.d);
  };
  // Mean gap of each side to its tangent line, as that side's queueing scale.
  auto mean_gap = [&](const std::vector<hpt>& pts, const std::vector<hpt>& hh, long double slope, bool upper) {
    std::size_t j = 0;
    while (j + 2 < hh.size() && static_cast<long double>(hh[j + 1].x) < xbar) ++j;
    const long double y0 = static_cast<long double>(hh[j].y), x0 = static_cast<long double>(hh[j].x);
    long double sum = 0;
    for (std::size_t i = 0; i < pts.size(); ++i) {
      if (!alive[i]) continue;
      const long double l = y0 + slope * (static_cast<long double>(pts[i].x) - x0);
      sum += upper ? l - static_cast<long double>(pts[i].y) : static_cast<long double>(pts[i].y) - l;
    }
    return sum / static_cast<long double>(n_alive);
  };
  const auto ta = tangent(sv.ua);
  const auto tb = tangent(sv.lb);
  long double rho = 0;
  if (ta && tb) {
    const long double ga = std::max(mean_gap(pa, sv.ua, *ta, true), 1e-3L);
    const long double gb = std::max(mean_gap(pb, sv.lb, *tb, false), 1e-3L);
    const long double wa = 1 / (ga * ga), wb = 1 / (gb * gb);
    rho = (wa * *ta + wb * *tb) / (wa + wb);
  } else if (ta) {
    rho = *ta;
  } else if (tb) {
    rho = *tb;
  }
  const long double rlo = static_cast<long double>(rho_lo.n) / static_cast<long double>(rho_lo.d);
  const long double rhi = static_cast<long double>(rho_hi.n) / static_cast<long double>(rho_hi.d);
  rho = std::clamp(rho, rlo, rhi);
  long double fmax = -1e300L, gmin = 1e300L;
  for (const auto& p : sv.ua) fmax = std::max(fmax, static_cast<long double>(p.y) - rho * static_cast<long double>(p.x));
  for (const auto& p : sv.lb) gmin = std::min(gmin, static_cast<long double>(p.y) - rho * static_cast<long double>(p.x));
  const long double theta = (fmax + gmin) / 2;
  out.centre_theta = static_cast<double>(theta);
  out.centre_rho = static_cast<double>(rho);
  auto sq = slope_to_q48(static_cast<double>(rho));
  if (!sq) return unexpected(errc::out_of_range);
  out.centre = line{out.base + static_cast<std::int64_t>(std::llround(static_cast<double>(theta))), *sq};

  out.stats.probes_used = probes.size() - out.dropped.size();
  out.stats.probes_rejected = out.dropped.size();
  bool first = true;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    if (!alive[i]) continue;
    const auto r = rtt_of(probes[i]);
    out.stats.min_rtt = first ? r : std::min(out.stats.min_rtt, r);
    first = false;
  }
  return out;
}

}  // namespace tsync::estimate
