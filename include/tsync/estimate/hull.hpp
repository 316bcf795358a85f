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
#include <utility>
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
  template <class = void>
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

/// Push `p` (the next point in x order) onto the upper (`upper`) or lower
/// monotone chain `h`. Of points with equal x only the extreme y is kept (the
/// first one of equal extremes); collinear middle points are dropped.
template <class = void>
inline void chain_push(std::vector<hpt>& h, const hpt& p, bool upper) {
  if (!h.empty() && h.back().x == p.x) {
    if (!(upper ? p.y > h.back().y : p.y < h.back().y)) return;
    h.pop_back();
  }
  while (h.size() >= 2) {
    const i128 c = cross(h[h.size() - 2], h.back(), p);
    if (upper ? c >= 0 : c <= 0) h.pop_back();
    else break;
  }
  h.push_back(p);
}

/// Upper hull (for `upper`) or lower hull of points in any order; for equal x
/// only the extreme y is kept.
template <class = void>
inline std::vector<hpt> half_hull(std::vector<hpt> pts, bool upper) {
  std::sort(pts.begin(), pts.end(), [](const hpt& a, const hpt& b) { return a.x != b.x ? a.x < b.x : a.idx < b.idx; });
  std::vector<hpt> h;
  for (const auto& p : pts) chain_push(h, p, upper);
  return h;
}

/// One probe in the fit's coordinates: x = g − ref, a and b the lower and upper
/// bounds relative to the base (all within ±2^52), idx its input index.
struct hull_probe {
  std::int64_t x, a, b;
  std::size_t idx;
};

/// The probes sorted by x, cut into blocks of `hull_blocks::block` probes,
/// with a balanced tree over the blocks: each leaf holds its block's upper hull
/// of (x, a) and lower hull of (x, b), each inner node the hulls of its two
/// children's hull vertices (the children cover adjacent x ranges, so one
/// monotone-chain pass over the left's then the right's vertices merges them),
/// and the root the hulls of all alive probes. Dropping a probe rebuilds its
/// block and the nodes on its path to the root: O(block + depth · vertices)
/// per drop after an O(n log n) build, with the same hulls as a rebuild from
/// scratch (a point that is no vertex of a part's hull is no vertex of the
/// whole's; ties keep the first in sorted order either way). Chain entries
/// carry the sorted position in `hpt::idx`. About 34 bytes per probe.
class hull_blocks {
 public:
  /// Probes per block (a leaf of the tree).
  static constexpr std::size_t block = 256;

  template <class = void>
  explicit hull_blocks(std::vector<hull_probe> pts) : pts_(std::move(pts)), alive_(pts_.size(), 1) {
    std::sort(pts_.begin(), pts_.end(),
              [](const hull_probe& l, const hull_probe& r) { return l.x != r.x ? l.x < r.x : l.idx < r.idx; });
    const std::size_t nb = (pts_.size() + block - 1) / block;
    leaves_ = 1;
    while (leaves_ < nb) leaves_ *= 2;
    up_.resize(2 * leaves_);
    lo_.resize(2 * leaves_);
    for (std::size_t k = 0; k < nb; ++k) rebuild_leaf(k);
    for (std::size_t node = leaves_ - 1; node >= 1; --node) merge(node);
  }
  [[nodiscard]] const hull_probe& at(std::size_t pos) const noexcept { return pts_[pos]; }
  /// Drop the probe at sorted position `pos` (idempotent).
  template <class = void>
  void drop(std::size_t pos) {
    if (alive_[pos] == 0) return;
    alive_[pos] = 0;
    rebuild_leaf(pos / block);
    for (std::size_t node = (leaves_ + pos / block) / 2; node >= 1; node /= 2) merge(node);
  }
  /// The upper hull of the alive (x, a) and the lower hull of the alive (x, b).
  template <class = void>
  void hulls(std::vector<hpt>& ua, std::vector<hpt>& lb) const {
    ua.clear();
    lb.clear();
    for (const std::size_t p : up_[1]) ua.push_back(upper_pt(p));
    for (const std::size_t p : lo_[1]) lb.push_back(lower_pt(p));
  }

 private:
  [[nodiscard]] hpt upper_pt(std::size_t pos) const noexcept { return {pts_[pos].x, pts_[pos].a, pos}; }
  [[nodiscard]] hpt lower_pt(std::size_t pos) const noexcept { return {pts_[pos].x, pts_[pos].b, pos}; }
  static void positions(const std::vector<hpt>& chain, std::vector<std::size_t>& out) {
    out.clear();
    for (const auto& h : chain) out.push_back(h.idx);
    out.shrink_to_fit();
  }
  template <class = void>
  void rebuild_leaf(std::size_t k) {
    const std::size_t begin = k * block, end = std::min(pts_.size(), begin + block);
    scratch_.clear();
    for (std::size_t p = begin; p < end; ++p)
      if (alive_[p] != 0) chain_push(scratch_, upper_pt(p), true);
    positions(scratch_, up_[leaves_ + k]);
    scratch_.clear();
    for (std::size_t p = begin; p < end; ++p)
      if (alive_[p] != 0) chain_push(scratch_, lower_pt(p), false);
    positions(scratch_, lo_[leaves_ + k]);
  }
  void merge(std::size_t node) {
    scratch_.clear();
    for (const std::size_t c : {2 * node, 2 * node + 1})
      for (const std::size_t p : up_[c]) chain_push(scratch_, upper_pt(p), true);
    positions(scratch_, up_[node]);
    scratch_.clear();
    for (const std::size_t c : {2 * node, 2 * node + 1})
      for (const std::size_t p : lo_[c]) chain_push(scratch_, lower_pt(p), false);
    positions(scratch_, lo_[node]);
  }

  std::vector<hull_probe> pts_;
  std::vector<unsigned char> alive_;
  std::size_t leaves_ = 1;                      // leaf count of the tree (a power of two)
  std::vector<std::vector<std::size_t>> up_, lo_;  // per tree node (1 = root, leaves_ + k = block k): hull positions
  std::vector<hpt> scratch_;
};

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

/// A sequence of probes for the hull fit: `size()`, `at(i)` and
/// `for_each(f)`, which calls `f(i, probe)` for i = 0, 1, ... in order. The
/// fit reads its probes through a source so that callers holding them in
/// pieces (bursts, with per-burst shifts) need not copy them into one array.
struct span_probes {
  std::span<const probe_sample> probes;
  [[nodiscard]] std::size_t size() const noexcept { return probes.size(); }
  [[nodiscard]] const probe_sample& at(std::size_t i) const noexcept { return probes[i]; }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < probes.size(); ++i) f(i, probes[i]);
  }
};

/// The probes in fit coordinates (see `hull_probe`); `errc::out_of_range` when
/// a coordinate is beyond ±2^52 ns from the reference. Sets `out.x_first/x_last`.
template <class Src>
expected<std::vector<hull_probe>, errc> hull_coordinates(const Src& probes, std::int64_t ref, hull_fit& out) {
  constexpr i128 lim = static_cast<i128>(1) << 52;
  std::vector<hull_probe> pts;
  pts.reserve(probes.size());
  i128 xmin = lim, xmax = -lim;
  bool bad = false;
  probes.for_each([&](std::size_t i, const probe_sample& p) {
    const i128 x = static_cast<i128>(p.g) - ref;
    const i128 a = static_cast<i128>(lower_bound_of(p)) - out.base;
    const i128 b = static_cast<i128>(upper_bound_of(p)) - out.base;
    if (bad || x <= -lim || x >= lim || a <= -lim || a >= lim || b <= -lim || b >= lim) {
      bad = true;
      return;
    }
    pts.push_back({static_cast<std::int64_t>(x), static_cast<std::int64_t>(a), static_cast<std::int64_t>(b), i});
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
  });
  if (bad) return unexpected(errc::out_of_range);
  out.x_first = static_cast<std::int64_t>(xmin);
  out.x_last = static_cast<std::int64_t>(xmax);
  return pts;
}

/// The candidate slopes of the current hulls within [dmin, dmax], sorted and
/// unique: the bounds and every hull edge slope (H is piecewise linear between them).
template <class = void>
inline void hull_candidates(const band_solver& sv, const rat& dmin, const rat& dmax, std::vector<rat>& cand) {
  cand.clear();
  cand.push_back(dmin);
  cand.push_back(dmax);
  for (std::size_t j = 0; j + 1 < sv.ua.size(); ++j) cand.push_back(sv.edge(sv.ua, j));
  for (std::size_t j = 0; j + 1 < sv.lb.size(); ++j) cand.push_back(sv.edge(sv.lb, j));
  std::sort(cand.begin(), cand.end(), rat_less);
  cand.erase(std::unique(cand.begin(), cand.end(), rat_eq), cand.end());
  cand.erase(std::remove_if(cand.begin(), cand.end(),
                            [&](const rat& c) { return rat_less(c, dmin) || rat_less(dmax, c); }),
             cand.end());
}

/// H(c) = G(c) − F(c) at the candidates, compared through its numerator over
/// c.d (> 0). Feasible iff H >= 0 at some candidate (exact sign). Returns
/// whether it is feasible, and in `best` the least-violated candidate
/// (compared approximately: it only picks what to drop).
inline bool hull_feasible(const band_solver& sv, const std::vector<rat>& cand, std::size_t& best) {
  best = 0;
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
  return ok;
}

/// Soft rejection: while no line fits, drop the two probes that bind at the
/// least-violated slope, within the budget. On success `sv` holds the hulls
/// of the kept probes and `cand` their candidate slopes; `alive` (by input
/// index) and `out.dropped` record the drops.
template <class = void>
inline expected<void, errc> hull_solve(hull_blocks& blocks, std::size_t budget, const rat& dmin, const rat& dmax,
                                       band_solver& sv, std::vector<rat>& cand, std::vector<char>& alive,
                                       hull_fit& out) {
  while (true) {
    blocks.hulls(sv.ua, sv.lb);
    if (sv.ua.empty()) return unexpected(errc::infeasible);
    hull_candidates(sv, dmin, dmax, cand);
    std::size_t best = 0;
    if (hull_feasible(sv, cand, best)) return {};
    const std::size_t fa = sv.ua[sv.arg_f(cand[best], false)].idx;  // sorted positions
    const std::size_t gb = sv.lb[sv.arg_g(cand[best], false)].idx;
    if (out.dropped.size() + 2 > budget) return unexpected(errc::infeasible);
    const std::size_t ia = blocks.at(fa).idx, ib = blocks.at(gb).idx;
    alive[ia] = 0;
    alive[ib] = 0;
    blocks.drop(fa);
    blocks.drop(gb);
    out.dropped.push_back(ia);
    if (ib != ia) out.dropped.push_back(ib);
  }
}

/// The feasible polygon of a feasible band: its slope range [rho_lo, rho_hi]
/// (returned) and its vertices in `out.polygon`.
template <class = void>
inline std::pair<rat, rat> hull_polygon(const band_solver& sv, const std::vector<rat>& cand, hull_fit& out) {
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
    if (d < 0) {
      n = -n;
      d = -d;
    }
    return {n, d};
  };
  const rat rho_lo = L > 0 ? crossing(cand[L], true, cand[L]) : cand[L];
  const rat rho_hi = R + 1 < cand.size() ? crossing(cand[R], false, cand[R]) : cand[R];
  std::vector<rat> rhos{rho_lo};
  for (std::size_t i = L; i <= R; ++i)
    if (rat_less(rho_lo, cand[i]) && rat_less(cand[i], rho_hi)) rhos.push_back(cand[i]);
  if (rat_less(rho_lo, rho_hi)) rhos.push_back(rho_hi);
  for (const auto& r : rhos) out.polygon.push_back({sv.f_num(r), r.n, r.d});
  for (auto it = rhos.rbegin(); it != rhos.rend(); ++it) out.polygon.push_back({sv.g_num(*it), it->n, it->d});
  out.feasible = true;
  return {rho_lo, rho_hi};
}

/// The envelope-tangent drift (see the file comment), unclamped, from the
/// kept probes (`alive`, by input index) in input order.
template <class Src>
long double hull_tangent_drift(const Src& probes, const std::vector<char>& alive, const band_solver& sv,
                               std::int64_t ref, std::int64_t base) {
  auto xy = [&](const probe_sample& p, bool upper) {
    return std::pair<long double, long double>{
        static_cast<long double>(static_cast<i128>(p.g) - ref),
        static_cast<long double>(static_cast<i128>(upper ? upper_bound_of(p) : lower_bound_of(p)) - base)};
  };
  long double sum_x = 0;
  std::size_t n_alive = 0;
  probes.for_each([&](std::size_t i, const probe_sample& p) {
    if (alive[i]) {
      sum_x += xy(p, false).first;
      ++n_alive;
    }
  });
  const long double xbar = sum_x / static_cast<long double>(n_alive);
  auto at_mean = [&](const std::vector<hpt>& hh) {
    std::size_t j = 0;
    while (j + 2 < hh.size() && static_cast<long double>(hh[j + 1].x) < xbar) ++j;
    return j;
  };
  auto tangent = [&](const std::vector<hpt>& hh) -> std::optional<long double> {
    if (hh.size() < 2) return std::nullopt;
    const rat e = sv.edge(hh, at_mean(hh));
    return static_cast<long double>(e.n) / static_cast<long double>(e.d);
  };
  // Mean gap of each side to its tangent line, as that side's queueing scale.
  auto mean_gap = [&](const std::vector<hpt>& hh, long double slope, bool b_side) {
    const std::size_t j = at_mean(hh);
    const long double y0 = static_cast<long double>(hh[j].y), x0 = static_cast<long double>(hh[j].x);
    long double sum = 0;
    probes.for_each([&](std::size_t i, const probe_sample& p) {
      if (!alive[i]) return;
      const auto [x, y] = xy(p, b_side);
      const long double l = y0 + slope * (x - x0);
      sum += b_side ? y - l : l - y;
    });
    return sum / static_cast<long double>(n_alive);
  };
  const auto ta = tangent(sv.ua);
  const auto tb = tangent(sv.lb);
  if (ta && tb) {
    const long double ga = std::max(mean_gap(sv.ua, *ta, false), 1e-3L);
    const long double gb = std::max(mean_gap(sv.lb, *tb, true), 1e-3L);
    const long double wa = 1 / (ga * ga), wb = 1 / (gb * gb);
    return (wa * *ta + wb * *tb) / (wa + wb);
  }
  if (ta) return *ta;
  if (tb) return *tb;
  return 0;
}

/// `fit_hull` over a probe source (see `span_probes`).
template <class Src>
[[nodiscard]] expected<hull_fit, errc> fit_hull_of(const Src& probes, std::int64_t ref, const fit_options& opt) {
  using detail::rat;
  if (probes.size() == 0) return unexpected(errc::empty_input);
  hull_fit out;
  out.ref = ref;
  out.base = lower_bound_of(probes.at(probes.size() / 2));
  auto pts = detail::hull_coordinates(probes, ref, out);
  if (!pts) return unexpected(pts.error());
  const auto dq = slope_to_q48(opt.max_drift);
  if (!dq) return unexpected(errc::non_finite);
  const rat dmax{*dq, static_cast<i128>(1) << slope_frac_bits};
  const rat dmin{-*dq, dmax.d};

  std::vector<char> alive(probes.size(), 1);
  const auto budget = static_cast<std::size_t>(opt.max_soft_reject * static_cast<double>(probes.size()));
  detail::band_solver sv;
  sv.dmax = dmax;
  std::vector<rat> cand;
  {
    detail::hull_blocks blocks(std::move(*pts));
    if (auto r = detail::hull_solve(blocks, budget, dmin, dmax, sv, cand, alive, out); !r) return unexpected(r.error());
  }
  const auto [rho_lo, rho_hi] = detail::hull_polygon(sv, cand, out);

  long double rho = detail::hull_tangent_drift(probes, alive, sv, ref, out.base);
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
  probes.for_each([&](std::size_t i, const probe_sample& p) {
    if (!alive[i]) return;
    const auto r = rtt_of(p);
    out.stats.min_rtt = first ? r : std::min(out.stats.min_rtt, r);
    first = false;
  });
  return out;
}

}  // namespace detail

/// Fit the band to the probes (already screened; see `prepare`). `ref` is the
/// reference guest time. Errors: `empty_input`, `out_of_range` (coordinates
/// beyond ±2^52 ns from the reference), `infeasible` (no line satisfies the
/// constraints even after dropping `max_soft_reject` of the probes).
///
/// Cost: O(n log n) for the sort and the block hulls, then per pair of dropped
/// probes O(block + log n · hull vertices) (see `detail::hull_blocks`).
template <class = void>
[[nodiscard]] inline expected<hull_fit, errc> fit_hull(std::span<const probe_sample> probes, std::int64_t ref,
                                                      const fit_options& opt) {
  return detail::fit_hull_of(detail::span_probes{probes}, ref, opt);
}

}  // namespace tsync::estimate
