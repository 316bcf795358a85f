#pragma once
/// \file
/// Whole-trace estimators built on the exact hull:
///
/// * `convex_hull` — one affine segment over the whole trace (after the outlier
///   gate); reports `errc::infeasible` when no line fits (a step, wander).
/// * `segmented` — detects clock steps and one-way delay (asymmetry) changes
///   from level shifts of the per-burst causality envelopes, splits the trace
///   at clock steps, keeps one clock line across asymmetry changes (the
///   constraints stay valid), and splits further where the affine fit stops
///   holding (hull infeasibility or a burst far from the fit). Steps leave a
///   gap between the last burst before and the first burst after, where the
///   hard bounds are the union of both sides'.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/hull.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

namespace detail {

[[nodiscard]] inline std::int64_t mid_time(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(floor_div(static_cast<i128>(a) + b, 2));
}

/// Move a segment's point-estimate line into its own hard bounds: the lines
/// `lo` and `hi` are the vertices (θ, ρ) of a convex feasible set, and a line
/// inside their convex hull lies between the lowest and highest of them at
/// every time. The slope is clamped to the vertices' slope range, then the
/// offset to the hull's section at that slope. Returns true if it moved.
template <class = void>
inline bool clamp_into_bounds(segment& s) {
  std::vector<std::pair<double, double>> v;  // (ρ in q48 units, θ)
  for (const auto* set : {&s.lo, &s.hi})
    for (const auto& l : *set) v.emplace_back(static_cast<double>(l.slope_q48), static_cast<double>(l.offset));
  if (v.empty()) return false;
  double rmin = v.front().first, rmax = rmin;
  for (const auto& p : v) {
    rmin = std::min(rmin, p.first);
    rmax = std::max(rmax, p.first);
  }
  const double rho = std::clamp(static_cast<double>(s.fit.slope_q48), rmin, rmax);
  double tmin = 1e300, tmax = -1e300;
  for (const auto& a : v)
    for (const auto& b : v) {
      if (!(a.first <= rho && rho <= b.first)) continue;
      const double t = b.first == a.first ? a.second : a.second + (b.second - a.second) * (rho - a.first) / (b.first - a.first);
      tmin = std::min(tmin, std::min(t, a.first == b.first ? b.second : t));
      tmax = std::max(tmax, std::max(t, a.first == b.first ? b.second : t));
    }
  if (tmin > tmax) return false;
  const double theta = std::clamp(static_cast<double>(s.fit.offset), tmin, tmax);
  const line moved{static_cast<std::int64_t>(std::llround(theta)), static_cast<std::int64_t>(std::llround(rho))};
  if (moved == s.fit) return false;
  s.fit = moved;
  return true;
}

/// The probes of bursts [first, last] as one sequence for `fit_hull_of`, with
/// optional per-burst shifts (ns added to t1 and t2), without copying them.
struct burst_range_probes {
  const std::vector<burst_probes>* bursts;
  std::size_t first, last;
  const std::vector<std::pair<std::int64_t, std::int64_t>>* shifts = nullptr;
  std::size_t count = 0;

  burst_range_probes(const std::vector<burst_probes>& b, std::size_t f, std::size_t l,
                     const std::vector<std::pair<std::int64_t, std::int64_t>>* s = nullptr)
      : bursts(&b), first(f), last(l), shifts(s) {
    for (std::size_t k = first; k <= last; ++k) count += b[k].probes.size();
  }
  [[nodiscard]] std::size_t size() const noexcept { return count; }
  [[nodiscard]] probe_sample shifted(std::size_t k, probe_sample p) const noexcept {
    if (shifts != nullptr) {
      p.t1 += (*shifts)[k].first;
      p.t2 += (*shifts)[k].second;
    }
    return p;
  }
  [[nodiscard]] probe_sample at(std::size_t i) const noexcept {
    std::size_t k = first;
    while (i >= (*bursts)[k].probes.size()) i -= (*bursts)[k++].probes.size();
    return shifted(k, (*bursts)[k].probes[i]);
  }
  template <class F>
  void for_each(F&& f) const {
    std::size_t i = 0;
    for (std::size_t k = first; k <= last; ++k)
      for (const auto& p : (*bursts)[k].probes) f(i++, shifted(k, p));
  }
};

/// A hull fit over a range of bursts, as one model segment.
/// With `shifts` (per burst: ns added to every lower bound t1 − g and to every
/// upper bound t2 − g), the point estimate is the centroid of the shifted
/// constraints (asymmetry changes undone) while the hard bounds stay those of
/// the raw constraints. The probes are read in place (no copy).
template <class = void>
[[nodiscard]] inline expected<segment, errc> hull_segment(
    const std::vector<burst_probes>& bursts, std::size_t first, std::size_t last, const fit_options& opt,
    const std::vector<std::pair<std::int64_t, std::int64_t>>* shifts = nullptr) {
  std::uint64_t rejected = 0;
  for (std::size_t k = first; k <= last; ++k) rejected += bursts[k].rejected;
  const burst_range_probes all(bursts, first, last);
  if (all.size() == 0) return unexpected(errc::empty_input);
  const std::int64_t g0 = bursts[first].probes.front().g;
  const std::int64_t g1 = bursts[last].probes.back().g;
  const std::int64_t ref = mid_time(g0, g1);
  auto h = fit_hull_of(all, ref, opt);
  if (!h) return unexpected(h.error());
  bool shifted = false;
  if (shifts)
    for (std::size_t k = first; k <= last; ++k) shifted = shifted || (*shifts)[k] != std::pair<std::int64_t, std::int64_t>{0, 0};
  if (shifted) {
    fit_options o2 = opt;
    o2.max_soft_reject = 0;
    if (auto hc = fit_hull_of(burst_range_probes(bursts, first, last, shifts), ref, o2)) h->centre = hc->centre;
  }
  segment s;
  s.begin = g0;
  s.end = g1 == std::numeric_limits<std::int64_t>::max() ? g1 : g1 + 1;
  s.ref = ref;
  s.fit = h->centre;
  s.lo = h->bound_lines(false);
  s.hi = h->bound_lines(true);
  s.diag.stats = h->stats;
  s.diag.stats.probes_rejected += rejected;
  s.diag.stats.bursts = static_cast<std::uint32_t>(last - first + 1);
  clamp_into_bounds(s);
  return s;
}

/// Re-express a line of a segment with reference `from` at reference `to`,
/// rounding the offset down (`down`) or up.
[[nodiscard]] inline line rebase(const line& l, std::int64_t from, std::int64_t to, bool down) {
  const i128 v = l.value_at(static_cast<i128>(to) - from, down ? line::rounding::floor : line::rounding::ceil);
  const i128 lim = static_cast<i128>(std::numeric_limits<std::int64_t>::max());
  return {static_cast<std::int64_t>(std::clamp(v, -lim, lim)), l.slope_q48};
}

/// Per-burst summary used by the change detector.
struct burst_summary {
  double x = 0;      // reference guest time relative to the first burst
  double alpha = 0;  // de-trended upper envelope of lower bounds (max t1 − g)
  double beta = 0;   // de-trended lower envelope of upper bounds (min t2 − g)
  double rtt = 0;    // minimum RTT
};

template <class = void>
[[nodiscard]] inline double robust_scale(std::vector<double> v) {
  if (v.empty()) return 0;
  for (auto& x : v) x = std::fabs(x);
  return 1.4826 * median_of(std::move(v));
}

enum class change { none, step, asymmetry, outlier };

/// The classification of the boundary before a burst, with the envelope jumps
/// (ns) of the lower-bound side (`ja`) and the upper-bound side (`jb`) that
/// are significant (0 when not).
struct change_point {
  change kind = change::none;
  double ja = 0;
  double jb = 0;
};

/// Classify the boundary before each burst k (k >= 1) from the jumps of the
/// envelopes, compared with the local slope of the neighbours.
template <class = void>
inline std::vector<change_point> detect_changes(const std::vector<burst_summary>& s, double min_rtt, double gate) {
  const std::size_t n = s.size();
  std::vector<change_point> out(n);
  if (n < 3) return out;
  auto jumps = [&](auto get) {
    std::vector<double> local(n, 0.0), j(n, 0.0);
    for (std::size_t k = 1; k < n; ++k) {
      const double dx = s[k].x - s[k - 1].x;
      local[k] = dx > 0 ? (get(s[k]) - get(s[k - 1])) / dx : 0.0;
    }
    for (std::size_t k = 1; k < n; ++k) {
      // The slopes of up to two neighbours on each side (local[0] is not a slope).
      std::vector<double> nb;
      if (k >= 2) nb.push_back(local[k - 1]);
      if (k + 1 < n) nb.push_back(local[k + 1]);
      if (k >= 3) nb.push_back(local[k - 2]);
      if (k + 2 < n) nb.push_back(local[k + 2]);
      const double sref = nb.empty() ? 0.0 : median_of(nb);
      j[k] = get(s[k]) - get(s[k - 1]) - (s[k].x - s[k - 1].x) * sref;
    }
    return j;
  };
  const auto ja = jumps([](const burst_summary& b) { return b.alpha; });
  const auto jb = jumps([](const burst_summary& b) { return b.beta; });
  std::vector<double> va(ja.begin() + 1, ja.end()), vb(jb.begin() + 1, jb.end());
  const double floor_thr = std::max(1.0, min_rtt / 200.0);
  const double ta = std::max(gate * robust_scale(va), floor_thr);
  const double tb = std::max(gate * robust_scale(vb), floor_thr);
  auto sig = [&](std::size_t k) {
    const bool a = std::fabs(ja[k]) > ta, b = std::fabs(jb[k]) > tb;
    return std::pair{a, b};
  };
  for (std::size_t k = 1; k < n; ++k) {
    auto [a, b] = sig(k);
    if (!a && !b) continue;
    // A lone burst that jumps away and back is an outlier burst, not a change.
    if (k + 1 < n) {
      auto [a2, b2] = sig(k + 1);
      const bool back_a = !a || (a2 && std::fabs(ja[k] + ja[k + 1]) < ta && ja[k] * ja[k + 1] < 0);
      const bool back_b = !b || (b2 && std::fabs(jb[k] + jb[k + 1]) < tb && jb[k] * jb[k + 1] < 0);
      if (back_a && back_b) {
        out[k].kind = change::outlier;
        ++k;  // the return jump belongs to the same outlier
        continue;
      }
    }
    out[k].kind = a && b && ja[k] * jb[k] > 0 ? change::step : change::asymmetry;
    out[k].ja = a ? ja[k] : 0.0;
    out[k].jb = b ? jb[k] : 0.0;
  }
  return out;
}

/// Largest de-trended lower bound and smallest upper bound over bursts [a, b).
template <class = void>
[[nodiscard]] inline std::pair<double, double> window_envelope(const std::vector<burst_summary>& s, std::size_t a,
                                                               std::size_t b) {
  double lo = -1e300, hi = 1e300;
  for (std::size_t i = a; i < b && i < s.size(); ++i) {
    lo = std::max(lo, s[i].alpha);
    hi = std::min(hi, s[i].beta);
  }
  return {lo, hi};
}

/// True when burst k's causality envelope contradicts a neighbour's by more
/// than `tol` (one of them holds a glitch): its lower envelope above the
/// other's upper one, or its upper envelope below the other's lower one.
template <class = void>
[[nodiscard]] inline bool contradicts_neighbours(const std::vector<burst_summary>& s, std::size_t k, double tol) {
  for (std::size_t m : {k - 1, k + 1}) {
    if (m >= s.size() || m == k) continue;  // k - 1 wraps for k == 0
    if (s[k].alpha > s[m].beta + tol || s[k].beta < s[m].alpha - tol) return true;
  }
  return false;
}

/// Keep only the changes the data prove beyond the noise. A clock step must
/// leave the causality bounds of up to three bursts before and three after
/// contradicting each other by more than `noise` (a level shift that the
/// queueing of either direction could explain is no step: both sides still
/// fit one line). An asymmetry change must be confirmed by the minimum round
/// trip, which moves by the difference of the two envelope jumps.
template <class = void>
inline void confirm_changes(const std::vector<burst_summary>& s, std::vector<change_point>& changes, double noise) {
  auto med_rtt = [&](std::size_t a, std::size_t b) {
    std::vector<double> v;
    for (std::size_t i = a; i < b && i < s.size(); ++i) v.push_back(s[i].rtt);
    return v.empty() ? 0.0 : median_of(std::move(v));
  };
  for (std::size_t k = 1; k < changes.size(); ++k) {
    auto& c = changes[k];
    if (c.kind == change::step) {
      const auto [lo0, hi0] = window_envelope(s, k >= 3 ? k - 3 : 0, k);
      const auto [lo1, hi1] = window_envelope(s, k, k + 3);
      if (!(lo1 > hi0 + noise || hi1 < lo0 - noise)) c = {};
    } else if (c.kind == change::asymmetry) {
      const double implied = c.jb - c.ja;
      const double seen = med_rtt(k, k + 3) - med_rtt(k >= 3 ? k - 3 : 0, k);
      if (!(std::fabs(seen - implied) <= 0.5 * std::fabs(implied) && std::fabs(implied) > 2.0 * noise)) c = {};
    }
  }
}

/// Bursts after screening, with their envelope summaries and the change
/// classification of the boundary before each.
struct screened_bursts {
  std::vector<burst_probes> bursts;
  std::vector<burst_summary> summary;
  std::vector<change_point> changes;
  double slope = 0;          // rough drift used for de-trending
  double noise = 1;          // typical noise of a burst's envelope centre (ns)
  std::uint64_t dropped = 0; // probes of outlier bursts (kept bursts count their own rejections)
};

/// `prepare` (with the outlier gate), burst summaries, change detection, and
/// removal of outlier bursts (a burst whose envelopes jump away and back).
template <class = void>
[[nodiscard]] inline expected<screened_bursts, errc> screen_bursts(std::span<const probe_sample> probes,
                                                                  const fit_options& opt, double gate) {
  auto prep = prepare(probes, opt, true);
  if (!prep) return unexpected(prep.error());
  auto& bursts = prep->bursts;
  screened_bursts out;
  out.slope = rough_slope(bursts);
  const double slope = out.slope;
  const std::size_t n = bursts.size();
  std::vector<burst_summary> sum(n);
  std::vector<double> gaps;
  double min_rtt = 1e300;
  const std::int64_t x0 = bursts.front().ref();
  const std::int64_t base = lower_bound_of(bursts.front().probes.front());
  for (std::size_t k = 0; k < n; ++k) {
    const auto& b = bursts[k];
    const std::int64_t ref = b.ref();
    double a1 = -1e300, a2 = -1e300, u1 = 1e300, u2 = 1e300, r = 1e300;
    for (const auto& p : b.probes) {
      const double dx = static_cast<double>(static_cast<i128>(p.g) - ref);
      const double a = static_cast<double>(lower_bound_of(p) - base) - slope * dx;
      const double u = static_cast<double>(upper_bound_of(p) - base) - slope * dx;
      if (a > a1) { a2 = a1; a1 = a; } else if (a > a2) { a2 = a; }
      if (u < u1) { u2 = u1; u1 = u; } else if (u < u2) { u2 = u; }
      r = std::min(r, static_cast<double>(rtt_of(p)));
    }
    if (b.probes.size() >= 2) gaps.push_back(((a1 - a2) + (u2 - u1)) / 2.0);
    const double x = static_cast<double>(static_cast<i128>(ref) - x0);
    sum[k] = {x, a1 - slope * x, u1 - slope * x, r};
    min_rtt = std::min(min_rtt, r);
  }
  // The gap between the two most extreme bounds is about the scale of the
  // extreme's own fluctuation (exactly so for exponential tails).
  if (!gaps.empty()) out.noise = std::max(1.0, 1.4427 * median_of(gaps));
  // Burst-to-burst wander of the envelope centres (heavy-tailed on real
  // links: queueing, scheduling) is noise too.
  if (n >= 3) {
    std::vector<double> d;
    for (std::size_t k = 1; k < n; ++k) d.push_back(((sum[k].alpha + sum[k].beta) - (sum[k - 1].alpha + sum[k - 1].beta)) / 2.0);
    out.noise = std::max(out.noise, robust_scale(std::move(d)) / std::sqrt(2.0));
  }
  auto changes = detect_changes(sum, min_rtt, gate);
  confirm_changes(sum, changes, out.noise);
  for (std::size_t k = 0; k < n; ++k) {
    if (changes[k].kind == change::outlier) {
      if (opt.filter_outliers && contradicts_neighbours(sum, k, out.noise)) {
        out.dropped += bursts[k].probes.size() + bursts[k].rejected;
        continue;
      }
      changes[k] = {};
    }
    out.bursts.push_back(std::move(bursts[k]));
    out.summary.push_back(sum[k]);
    out.changes.push_back(changes[k]);
  }
  if (out.bursts.empty()) return unexpected(errc::all_rejected);
  return out;
}

/// Per burst, the shift (ns) that brings its envelope centre back to the
/// asymmetry of the first burst of its clock region: minus half the sum of
/// the lower- and upper-side jumps of every asymmetry change since the last
/// clock step (the same reference as `segmented`'s point estimate). A change
/// is used only if the minimum RTT confirms it: the median minimum RTT of up
/// to three bursts after it minus that of up to three before must be within
/// half of the jump it implies (`jb − ja`).
template <class = void>
[[nodiscard]] inline std::vector<double> asymmetry_centre_shifts(const std::vector<change_point>& changes,
                                                                const std::vector<burst_summary>& summary) {
  std::vector<double> out(changes.size(), 0.0);
  auto med_rtt = [&](std::size_t a, std::size_t b) {
    std::vector<double> v;
    for (std::size_t i = a; i < b && i < summary.size(); ++i) v.push_back(summary[i].rtt);
    return v.empty() ? 0.0 : median_of(std::move(v));
  };
  double c = 0;
  for (std::size_t k = 0; k < changes.size(); ++k) {
    if (changes[k].kind == change::step) c = 0;
    if (changes[k].kind == change::asymmetry && k < summary.size()) {
      const double implied = changes[k].jb - changes[k].ja;
      const double seen = med_rtt(k, k + 3) - med_rtt(k >= 3 ? k - 3 : 0, k);
      if (std::fabs(seen - implied) <= 0.5 * std::fabs(implied)) c -= (changes[k].ja + changes[k].jb) / 2.0;
    }
    out[k] = c;
  }
  return out;
}

}  // namespace detail

/// Default detection gate of the change detector (robust standard deviations).
inline constexpr double segmented_jump_gate = 10.0;

/// One affine segment over the whole trace (see the file comment). Bursts the
/// change detector marks as outliers are dropped first.
struct convex_hull_estimator {
  static constexpr std::string_view name = "convex_hull";
  template <class = void>
  [[nodiscard]] expected<model, errc> fit(std::span<const probe_sample> probes, const fit_options& opt = {}) const {
    auto sb = detail::screen_bursts(probes, opt, segmented_jump_gate);
    if (!sb) return unexpected(sb.error());
    auto s = detail::hull_segment(sb->bursts, 0, sb->bursts.size() - 1, opt);
    if (!s) return unexpected(s.error());
    s->diag.cause = boundary_cause::start;
    s->diag.stats.probes_rejected += sb->dropped;
    model m;
    m.estimator = std::string(name);
    m.segments.push_back(std::move(*s));
    return m;
  }
};

/// Change-point segmentation around the hull (see the file comment).
struct segmented_estimator {
  static constexpr std::string_view name = "segmented";

  /// Detection gate, in robust standard deviations of the burst-to-burst
  /// envelope jumps; shifts below `min_rtt / 200` are never reported.
  double jump_gate = segmented_jump_gate;
  /// Residual gate for the affine-fit test: a burst whose envelope centre is
  /// more than this many noise units (the typical gap between a burst's two
  /// most extreme bounds, about 1.7 standard deviations of the centre) from
  /// the segment's line splits the segment there.
  double residual_gate = 4.0;

  template <class = void>
  [[nodiscard]] expected<model, errc> fit(std::span<const probe_sample> probes, const fit_options& opt = {}) const {
    auto sb = detail::screen_bursts(probes, opt, jump_gate);
    if (!sb) return unexpected(sb.error());
    auto& kb = sb->bursts;
    auto& cause = sb->changes;
    keep_one_kink_step(sb->summary, cause);
    const auto shifts = undo_asymmetry(*sb);
    auto pieces = fit_pieces(*sb, shifts, opt);
    if (pieces.empty()) return unexpected(errc::infeasible);
    if (pieces.front().cause == boundary_cause::step) pieces.front().cause = boundary_cause::start;
    model m;
    m.estimator = std::string(name);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const auto& p = pieces[i];
      const bool continuous = i > 0 && p.cause == boundary_cause::nonlinear;
      const std::int64_t begin = continuous ? kb[p.first].ref() : kb[p.first].probes.front().g;
      if (i > 0 && p.cause == boundary_cause::step)
        add_gap(m, p.seg, kb[pieces[i - 1].last].probes.back().g, begin);
      add_piece(m, kb, cause, p, begin);
    }
    if (!m.segments.empty()) m.segments.front().diag.stats.probes_rejected += sb->dropped;
    if (auto c = m.check(); !c) return unexpected(c.error());
    return m;
  }

 private:
  /// A fitted range of bursts [first, last] and the cause of its start.
  struct piece {
    std::size_t first, last;
    boundary_cause cause;
    segment seg;
  };

  /// A frequency step (a kink of the offset) shows as two step candidates in
  /// a row: the bursts on either side of the kink both jump against their
  /// neighbours' mixed slope. Keep the one where two lines fit best.
  template <class = void>
  static void keep_one_kink_step(const std::vector<detail::burst_summary>& ks, std::vector<detail::change_point>& cause) {
    for (std::size_t k = 1; k + 1 < cause.size(); ++k) {
      if (cause[k].kind != detail::change::step || cause[k + 1].kind != detail::change::step) continue;
      auto two_lines = [&](std::size_t cut) {
        const std::size_t a = cut >= 6 ? cut - 6 : 0;
        const std::size_t b = std::min(cause.size() - 1, cut + 5);
        return line_sse(ks, a, cut - 1) + line_sse(ks, cut, b);
      };
      const std::size_t drop = two_lines(k) <= two_lines(k + 1) ? k + 1 : k;
      cause[drop] = {};
      ++k;
    }
  }

  /// Undo detected asymmetry changes for the point estimate: per burst, the
  /// shift of its lower and upper bounds back to the level of the first burst
  /// of its clock region (the hard bounds keep the raw constraints). The
  /// summaries are shifted in place.
  static std::vector<std::pair<std::int64_t, std::int64_t>> undo_asymmetry(detail::screened_bursts& sb) {
    std::vector<std::pair<std::int64_t, std::int64_t>> shifts(sb.bursts.size(), {0, 0});
    double ca = 0, cb = 0;
    for (std::size_t k = 0; k < sb.bursts.size(); ++k) {
      const auto& c = sb.changes[k];
      if (c.kind == detail::change::step) ca = cb = 0;
      if (c.kind == detail::change::asymmetry) {
        ca -= c.ja;
        cb -= c.jb;
      }
      shifts[k] = {static_cast<std::int64_t>(std::llround(ca)), static_cast<std::int64_t>(std::llround(cb))};
      sb.summary[k].alpha += ca;
      sb.summary[k].beta += cb;
    }
    return shifts;
  }

  /// Fit every clock region (bursts between detected steps) into pieces.
  template <class = void>
  std::vector<piece> fit_pieces(const detail::screened_bursts& sb,
                                const std::vector<std::pair<std::int64_t, std::int64_t>>& shifts,
                                const fit_options& opt) const {
    std::vector<std::pair<std::size_t, std::size_t>> regions;
    std::size_t start = 0;
    for (std::size_t i = 1; i <= sb.bursts.size(); ++i) {
      if (i == sb.bursts.size() || sb.changes[i].kind == detail::change::step) {
        regions.emplace_back(start, i - 1);
        start = i;
      }
    }
    std::vector<piece> pieces;
    for (std::size_t r = 0; r < regions.size(); ++r) {
      std::vector<piece> local;
      if (!fit_region(sb.bursts, sb.summary, shifts, regions[r].first, regions[r].second, opt, sb.slope, sb.noise,
                      local, 0))
        continue;
      if (!local.empty()) local.front().cause = r == 0 && pieces.empty() ? boundary_cause::start : boundary_cause::step;
      for (auto& p : local) pieces.push_back(std::move(p));
    }
    return pieces;
  }

  /// The gap after a step, between the previous piece's last probe `t_a` and
  /// this piece's first `t_b`: nothing is interpolated; each half holds the
  /// union of both sides' bounds (causes `gap`, then `step` at the middle).
  template <class = void>
  static void add_gap(model& m, const segment& next_fit, std::int64_t t_a, std::int64_t t_b) {
    if (t_b - t_a <= 2) return;
    const segment& prev = m.segments.back();
    const std::int64_t mid = detail::mid_time(t_a, t_b);
    auto union_seg = [&](const segment& own, const segment& other, std::int64_t b, boundary_cause c) {
      segment g = own;
      g.begin = b;
      for (const auto& l : other.lo) g.lo.push_back(detail::rebase(l, other.ref, own.ref, true));
      for (const auto& l : other.hi) g.hi.push_back(detail::rebase(l, other.ref, own.ref, false));
      g.diag.cause = c;
      g.diag.stats = {};
      return g;
    };
    segment g1 = union_seg(prev, next_fit, t_a + 1, boundary_cause::gap);
    segment g2 = union_seg(next_fit, prev, mid, boundary_cause::step);
    m.segments.push_back(std::move(g1));
    m.segments.push_back(std::move(g2));
  }

  /// Append a piece, split at the asymmetry changes inside it (same lines,
  /// own diagnostics).
  template <class = void>
  static void add_piece(model& m, const std::vector<burst_probes>& kb, const std::vector<detail::change_point>& cause,
                        const piece& p, std::int64_t begin) {
    std::vector<std::size_t> cuts{p.first};
    for (std::size_t k = p.first + 1; k <= p.last; ++k)
      if (cause[k].kind == detail::change::asymmetry) cuts.push_back(k);
    for (std::size_t c = 0; c < cuts.size(); ++c) {
      segment s = p.seg;
      const std::size_t k0 = cuts[c];
      const std::size_t k1 = c + 1 < cuts.size() ? cuts[c + 1] - 1 : p.last;
      s.begin = c == 0 ? begin : kb[k0].probes.front().g;
      s.diag.cause = c == 0 ? (p.cause == boundary_cause::step && !m.segments.empty() &&
                                       m.segments.back().diag.cause == boundary_cause::step
                                   ? boundary_cause::gap
                                   : p.cause)
                            : boundary_cause::asymmetry;
      if (cuts.size() > 1) s.diag.stats = range_stats(kb, k0, k1);
      if (!m.segments.empty() && s.begin <= m.segments.back().begin) continue;
      m.segments.push_back(std::move(s));
    }
  }

  /// Statistics of the bursts [k0, k1].
  template <class = void>
  static fit_stats range_stats(const std::vector<burst_probes>& kb, std::size_t k0, std::size_t k1) {
    fit_stats st;
    st.bursts = static_cast<std::uint32_t>(k1 - k0 + 1);
    bool first = true;
    for (std::size_t k = k0; k <= k1; ++k) {
      st.probes_used += kb[k].probes.size();
      st.probes_rejected += kb[k].rejected;
      for (const auto& q : kb[k].probes) {
        st.min_rtt = first ? rtt_of(q) : std::min(st.min_rtt, rtt_of(q));
        first = false;
      }
    }
    return st;
  }


  template <class Piece>
  bool fit_region(const std::vector<burst_probes>& kb, const std::vector<detail::burst_summary>& ks,
                  const std::vector<std::pair<std::int64_t, std::int64_t>>& shifts, std::size_t first,
                  std::size_t last, const fit_options& opt, double rough, double noise, std::vector<Piece>& out,
                  int depth) const {
    auto seg = detail::hull_segment(kb, first, last, opt, &shifts);
    std::size_t split = 0;
    bool need_split = false;
    if (!seg) {
      need_split = last > first;
      split = (first + last) / 2;
    } else if (last > first + 1 && depth < 40) {
      // Residual test: burst envelope centres against the fitted line, in
      // units of the envelope noise measured inside the bursts (so that a
      // smooth curvature cannot inflate its own yardstick).
      const auto [worst, at] = worst_residual(kb, ks, *seg, first, last, rough);
      split = at;
      if (worst > std::max(residual_gate * noise, 1.0)) need_split = true;
      split = std::clamp(split, first + 1, last - 1);
    }
    if (!need_split) {
      if (!seg) return false;
      out.push_back(Piece{first, last, boundary_cause::start, std::move(*seg)});
      return true;
    }
    if (!seg && last >= first + 3) {
      // A frequency step (a kink) too small for the change detector: when no
      // line fits, try two lines that each fit their bursts.
      // The best split of the burst centres into two least-squares lines,
      // accepted when both sides' hulls are feasible and pass the residual
      // test; the boundary is then a step with a gap (union of both sides'
      // bounds) instead of a shared burst.
      if (const auto k = kink_split(ks, first, last)) {
        std::vector<Piece> left, right;
        if (fits_one_line(kb, ks, shifts, first, *k - 1, opt, rough, noise, left) &&
            fits_one_line(kb, ks, shifts, *k, last, opt, rough, noise, right)) {
          right.front().cause = boundary_cause::step;
          for (auto& p : left) out.push_back(std::move(p));
          for (auto& p : right) out.push_back(std::move(p));
          return true;
        }
      }
    }
    if (last == first + 1) {
      bool a = fit_region(kb, ks, shifts, first, first, opt, rough, noise, out, depth + 1);
      const std::size_t before = out.size();
      bool b = fit_region(kb, ks, shifts, last, last, opt, rough, noise, out, depth + 1);
      if (b && out.size() > before) out[before].cause = boundary_cause::nonlinear;
      return a || b;
    }
    bool a = fit_region(kb, ks, shifts, first, split, opt, rough, noise, out, depth + 1);
    const std::size_t before = out.size();
    bool b = fit_region(kb, ks, shifts, split, last, opt, rough, noise, out, depth + 1);
    if (b && out.size() > before && a) out[before].cause = boundary_cause::nonlinear;
    return a || b;
  }

  /// Residual sum of squares of the least-squares line through the burst
  /// envelope centres of [a, b].
  template <class = void>
  [[nodiscard]] static double line_sse(const std::vector<detail::burst_summary>& ks, std::size_t a, std::size_t b) {
    if (b < a) return 0.0;
    const double n = static_cast<double>(b - a + 1);
    double sx = 0, sy = 0;
    for (std::size_t i = a; i <= b; ++i) {
      sx += ks[i].x;
      sy += (ks[i].alpha + ks[i].beta) / 2.0;
    }
    const double mx = sx / n, my = sy / n;
    double sxx = 0, sxy = 0, syy = 0;
    for (std::size_t i = a; i <= b; ++i) {
      const double dx = ks[i].x - mx, dy = (ks[i].alpha + ks[i].beta) / 2.0 - my;
      sxx += dx * dx;
      sxy += dx * dy;
      syy += dy * dy;
    }
    return sxx > 0 ? std::max(0.0, syy - sxy * sxy / sxx) : syy;
  }

  /// The burst index k (first + 2 <= k <= last − 1) that best splits the
  /// burst envelope centres of [first, last] into two least-squares lines
  /// ([first, k − 1] and [k, last]); empty if no split reduces the residual
  /// sum of squares of one line by at least half.
  template <class = void>
  [[nodiscard]] static std::optional<std::size_t> kink_split(const std::vector<detail::burst_summary>& ks,
                                                             std::size_t first, std::size_t last) {
    auto sse = [&](std::size_t a, std::size_t b) { return line_sse(ks, a, b); };
    const double whole = sse(first, last);
    std::optional<std::size_t> best;
    double best_v = 0.5 * whole;
    for (std::size_t k = first + 2; k + 1 <= last; ++k) {
      const double v = sse(first, k - 1) + sse(k, last);
      if (v < best_v) {
        best_v = v;
        best = k;
      }
    }
    return best;
  }

  /// Fit [first, last] as one segment if its hull is feasible and every
  /// burst passes the residual test.
  template <class Piece>
  bool fits_one_line(const std::vector<burst_probes>& kb, const std::vector<detail::burst_summary>& ks,
                     const std::vector<std::pair<std::int64_t, std::int64_t>>& shifts, std::size_t first,
                     std::size_t last, const fit_options& opt, double rough, double noise,
                     std::vector<Piece>& out) const {
    auto seg = detail::hull_segment(kb, first, last, opt, &shifts);
    if (!seg || worst_residual(kb, ks, *seg, first, last, rough).first > std::max(residual_gate * noise, 1.0))
      return false;
    out.push_back(Piece{first, last, boundary_cause::start, std::move(*seg)});
    return true;
  }

  /// The largest distance of a burst envelope centre from a segment's line,
  /// and the burst where it occurs.
  template <class = void>
  [[nodiscard]] static std::pair<double, std::size_t> worst_residual(const std::vector<burst_probes>& kb,
                                                                    const std::vector<detail::burst_summary>& ks,
                                                                    const segment& seg, std::size_t first,
                                                                    std::size_t last, double rough) {
    const double rho = q48_to_slope(seg.fit.slope_q48);
    const std::int64_t base = lower_bound_of(kb.front().probes.front());
    const double xref = static_cast<double>(static_cast<i128>(seg.ref) - kb.front().ref());
    std::vector<double> r;
    r.reserve(last - first + 1);
    for (std::size_t k = first; k <= last; ++k) {
      const double centre = (ks[k].alpha + ks[k].beta) / 2.0 + rough * ks[k].x;
      const double fit_at = static_cast<double>(seg.fit.offset - base) + rho * (ks[k].x - xref);
      r.push_back(centre - fit_at);
    }
    // A departure counts when it persists: the smallest |residual| of three
    // bursts in a row on the same side (one burst whose queues were all busy
    // is noise, not a bend of the clock).
    double worst = 0;
    std::size_t at = first;
    for (std::size_t i = 0; i < r.size(); ++i) {
      double v = std::fabs(r[i]);
      if (r.size() >= 3) {
        const std::size_t a = i == 0 ? 0 : (i + 1 == r.size() ? i - 2 : i - 1);
        for (std::size_t j = a; j < a + 3; ++j) v = r[j] * r[i] > 0 ? std::min(v, std::fabs(r[j])) : 0.0;
      }
      if (v > worst) {
        worst = v;
        at = first + i;
      }
    }
    return {worst, at};
  }
};

static_assert(trace_estimator<convex_hull_estimator>);
static_assert(trace_estimator<segmented_estimator>);

}  // namespace tsync::estimate
