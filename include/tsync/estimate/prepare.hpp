#pragma once
/// \file
/// Input screening shared by every estimator: bad probes (t2 < t1, stamps whose
/// differences overflow, duplicate ids within a burst) are rejected and counted,
/// or are fatal with `fit_options::strict`; probes are grouped into bursts; and
/// an optional outlier gate drops stamp glitches and mis-paired replies.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// Lower causality bound of one probe on the offset (host − guest): `t1 − g`.
/// The caller guarantees it fits (screened probes do).
[[nodiscard]] constexpr std::int64_t lower_bound_of(const probe_sample& p) noexcept { return p.t1 - p.g; }
/// Upper causality bound of one probe on the offset: `t2 − g`.
[[nodiscard]] constexpr std::int64_t upper_bound_of(const probe_sample& p) noexcept { return p.t2 - p.g; }
/// Round-trip time `t2 − t1`.
[[nodiscard]] constexpr std::int64_t rtt_of(const probe_sample& p) noexcept { return p.t2 - p.t1; }
/// Midpoint offset `(t1 + t2)/2 − g`, rounded half up, in 128 bits.
[[nodiscard]] constexpr i128 midpoint_offset(const probe_sample& p) noexcept {
  return floor_div(static_cast<i128>(p.t1) + p.t2 - 2 * static_cast<i128>(p.g) + 1, 2);
}

/// One burst after screening: its probes sorted by guest stamp.
struct burst_probes {
  std::uint32_t burst = 0;
  std::vector<probe_sample> probes;
  std::uint64_t rejected = 0;  ///< probes of this burst dropped by screening or the outlier gate
  [[nodiscard]] std::int64_t ref() const noexcept { return probes.empty() ? 0 : probes[probes.size() / 2].g; }
};

/// The screened input of a fit.
struct prepared_probes {
  std::vector<burst_probes> bursts;  ///< non-empty bursts, ordered by reference guest time
  std::uint64_t rejected = 0;        ///< total rejected (sum over bursts, plus bursts left empty)
  [[nodiscard]] std::uint64_t used() const noexcept {
    std::uint64_t n = 0;
    for (const auto& b : bursts) n += b.probes.size();
    return n;
  }
};

namespace detail {

/// True when every derived quantity of a probe (t1 − g, t2 − g, t2 − t1) fits
/// in 64 bits with room to spare (|x| < 2^62).
[[nodiscard]] constexpr bool probe_in_range(const probe_sample& p) noexcept {
  constexpr i128 lim = static_cast<i128>(1) << 62;
  const i128 a = static_cast<i128>(p.t1) - p.g;
  const i128 b = static_cast<i128>(p.t2) - p.g;
  return a > -lim && a < lim && b > -lim && b < lim;
}

/// Screen the probes of one group (one burst): causality, range, duplicate ids.
/// Exact copies of a probe keep one copy; differing probes sharing an id are
/// all dropped (the pairing is ambiguous). Strict mode fails on the first.
template <class = void>
[[nodiscard]] inline expected<std::vector<probe_sample>, errc> screen_group(std::span<const probe_sample> in,
                                                                           const fit_options& opt,
                                                                           std::uint64_t& rejected) {
  std::vector<probe_sample> v;
  v.reserve(in.size());
  for (const auto& p : in) {
    if (p.t2 < p.t1) {
      if (opt.strict) return unexpected(errc::causality_violation);
      ++rejected;
      continue;
    }
    if (!probe_in_range(p)) {
      if (opt.strict) return unexpected(errc::out_of_range);
      ++rejected;
      continue;
    }
    v.push_back(p);
  }
  std::stable_sort(v.begin(), v.end(), [](const probe_sample& x, const probe_sample& y) { return x.id < y.id; });
  std::vector<probe_sample> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i + 1;
    bool identical = true;
    while (j < v.size() && v[j].id == v[i].id) {
      identical = identical && v[j] == v[i];
      ++j;
    }
    const std::size_t copies = j - i;
    if (copies > 1 && opt.strict) return unexpected(errc::duplicate_id);
    if (identical) {
      out.push_back(v[i]);
      rejected += copies - 1;
    } else {
      rejected += copies;
    }
    i = j;
  }
  std::sort(out.begin(), out.end(), [](const probe_sample& x, const probe_sample& y) {
    return x.g != y.g ? x.g < y.g : x.id < y.id;
  });
  return out;
}

/// k-th largest (k >= 1) of a copy of `v`.
template <class = void>
[[nodiscard]] inline double kth_largest(std::vector<double> v, std::size_t k) {
  k = std::min(k, v.size());
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end(), std::greater<>());
  return v[k - 1];
}
template <class = void>
[[nodiscard]] inline double median_of(std::vector<double> v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace detail

/// The offset at a burst's reference time that `rough_slope` uses: the
/// centre of the burst's raw split envelope `[max(t1 − g), min(t2 − g)]` when
/// it is not empty (the per-direction minima, unbiased by queueing), else the
/// median midpoint offset.
template <class = void>
[[nodiscard]] inline double burst_level(const burst_probes& b) {
  const i128 base = midpoint_offset(b.probes.front());
  i128 lo = lower_bound_of(b.probes.front()), hi = upper_bound_of(b.probes.front());
  for (const auto& p : b.probes) {
    lo = std::max<i128>(lo, lower_bound_of(p));
    hi = std::min<i128>(hi, upper_bound_of(p));
  }
  if (lo <= hi) return static_cast<double>(base) + static_cast<double>(lo + hi - 2 * base) / 2.0;
  std::vector<double> o;
  o.reserve(b.probes.size());
  for (const auto& p : b.probes) o.push_back(static_cast<double>(midpoint_offset(p) - base));
  return static_cast<double>(base) + detail::median_of(std::move(o));
}

/// Rough drift (dimensionless) from burst to burst: the median of the slopes
/// between consecutive bursts' levels (`burst_level`). Robust to a step
/// (which spoils one slope). 0 with fewer than two bursts.
template <class = void>
[[nodiscard]] inline double rough_slope(const std::vector<burst_probes>& bursts) {
  std::vector<double> mids;
  std::vector<std::int64_t> refs;
  for (const auto& b : bursts) {
    if (b.probes.empty()) continue;
    mids.push_back(burst_level(b));
    refs.push_back(b.ref());
  }
  std::vector<double> slopes;
  for (std::size_t i = 1; i < mids.size(); ++i) {
    const double dx = static_cast<double>(static_cast<i128>(refs[i]) - refs[i - 1]);
    if (dx > 0) slopes.push_back((mids[i] - mids[i - 1]) / dx);
  }
  if (slopes.empty()) return 0.0;
  const double s = detail::median_of(std::move(slopes));
  return std::isfinite(s) ? s : 0.0;
}

/// Outlier gate for one burst (in place): drops only probes that contradict
/// the others. Each side is de-trended with `slope`; a probe whose lower bound
/// `t1 − g` lies above the upper bounds `t2 − g` of at least two other probes
/// (or whose upper bound lies below the lower bounds of at least two others)
/// is a stamp glitch or a mis-paired reply, and is dropped. A probe that only
/// saw less queueing than the rest is never dropped: when the burst's envelope
/// `[max(t1 − g), min(t2 − g)]` is not empty, nothing is, so the probes that
/// define the per-direction minima always stay. `gate` is the slack (ns) a
/// contradiction must exceed. Bursts of fewer than 3 probes are left alone.
template <class = void>
inline void gate_outliers(burst_probes& b, double slope, double gate) {
  const std::size_t n = b.probes.size();
  if (n < 3) return;
  const std::int64_t ref = b.ref();
  const i128 base = lower_bound_of(b.probes.front());
  std::vector<double> a(n), u(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = b.probes[i];
    const double trend = slope * static_cast<double>(static_cast<i128>(p.g) - ref);
    a[i] = static_cast<double>(lower_bound_of(p) - base) - trend;
    u[i] = static_cast<double>(upper_bound_of(p) - base) - trend;
  }
  // The two smallest upper bounds and the two largest lower bounds: a probe
  // contradicts two others when it passes the second of them (its own bound
  // excluded, it is on the other side).
  std::vector<double> us = u, as = a;
  std::partial_sort(us.begin(), us.begin() + 2, us.end());
  std::partial_sort(as.begin(), as.begin() + 2, as.end(), std::greater<>());
  const double u2 = us[1], a2 = as[1];
  std::vector<probe_sample> kept;
  kept.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] > u2 + gate || u[i] < a2 - gate) {
      ++b.rejected;
      continue;
    }
    kept.push_back(b.probes[i]);
  }
  b.probes = std::move(kept);
}

/// The extreme gate for one burst (in place), off by default
/// (`fit_options::extreme_gate`). Each side is de-trended with
/// `slope`; a probe whose lower bound `t1 − g` lies more than
/// `gate · (q05 − median)` above the burst's 5 % upper quantile of lower bounds
/// (or whose upper bound lies that far below the 5 % lower quantile of upper
/// bounds) is dropped. Bursts of fewer than 8 probes are left alone. This
/// catches stamp glitches about as large as the round trip, which contradict
/// no other probe, but it also drops probes that only saw an empty queue (the
/// ones that define the per-direction minima): on real links it can move a
/// burst's estimate by milliseconds. Use it only where stamps are known to
/// glitch.
template <class = void>
inline void gate_extremes(burst_probes& b, double slope, double gate) {
  const std::size_t n = b.probes.size();
  if (n < 8) return;
  const std::int64_t ref = b.ref();
  const i128 base_a = lower_bound_of(b.probes.front());
  const i128 base_b = upper_bound_of(b.probes.front());
  std::vector<double> a(n), u(n);
  std::int64_t min_rtt = rtt_of(b.probes.front());
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = b.probes[i];
    const double trend = slope * static_cast<double>(static_cast<i128>(p.g) - ref);
    a[i] = static_cast<double>(lower_bound_of(p) - base_a) - trend;
    u[i] = static_cast<double>(upper_bound_of(p) - base_b) - trend;
    min_rtt = std::min(min_rtt, rtt_of(p));
  }
  const std::size_t k = std::max<std::size_t>(2, static_cast<std::size_t>(std::ceil(0.05 * static_cast<double>(n))));
  const double floor_tau = 1.0 + static_cast<double>(min_rtt) / 100.0;
  const double ra = detail::kth_largest(a, k);
  const double ma = detail::median_of(a);
  const double tau_a = std::max(gate * (ra - ma), floor_tau);
  std::vector<double> neg(n);
  for (std::size_t i = 0; i < n; ++i) neg[i] = -u[i];
  const double rb = -detail::kth_largest(neg, k);
  const double mb = -detail::median_of(neg);
  const double tau_b = std::max(gate * (mb - rb), floor_tau);
  std::vector<probe_sample> kept;
  kept.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] > ra + tau_a || u[i] < rb - tau_b) {
      ++b.rejected;
      continue;
    }
    kept.push_back(b.probes[i]);
  }
  b.probes = std::move(kept);
}

/// Screen all probes and group them by burst number. Errors: `empty_input`
/// (no probes), `all_rejected` (none survive), `ambiguous` (guest time goes
/// backwards from one burst to the next: split with `split_epochs` of
/// breaks.hpp first), options errors from
/// `validate`, and in strict mode the first bad probe's error.
/// With `gate` true and `opt.filter_outliers`, the outlier gate runs per burst.
template <class = void>
[[nodiscard]] inline expected<prepared_probes, errc> prepare(std::span<const probe_sample> probes,
                                                            const fit_options& opt, bool gate) {
  if (auto v = validate(opt); !v) return unexpected(v.error());
  if (probes.empty()) return unexpected(errc::empty_input);
  // Ordered by burst number (stable); a copy only when the input is not already
  // (recorded traces are), so a whole trace is not held twice.
  const auto by_burst = [](const probe_sample& x, const probe_sample& y) { return x.burst < y.burst; };
  std::vector<probe_sample> reordered;
  std::span<const probe_sample> sorted = probes;
  if (!std::is_sorted(probes.begin(), probes.end(), by_burst)) {
    reordered.assign(probes.begin(), probes.end());
    std::stable_sort(reordered.begin(), reordered.end(), by_burst);
    sorted = reordered;
  }
  // Guest time must not go backwards from burst to burst (a reboot or a
  // backward clock step: two timelines share guest times; see breaks.hpp).
  // A burst lying wholly before the one numbered before it is such a jump
  // (bursts of several vCPUs may overlap; they do not lie wholly before).
  {
    bool have = false;
    std::int64_t prev_lo = 0;
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i;
      std::int64_t lo = sorted[i].g, hi = sorted[i].g;
      for (; j < sorted.size() && sorted[j].burst == sorted[i].burst; ++j) {
        lo = std::min(lo, sorted[j].g);
        hi = std::max(hi, sorted[j].g);
      }
      if (have && hi < prev_lo) return unexpected(errc::ambiguous);
      prev_lo = lo;
      have = true;
      i = j;
    }
  }
  prepared_probes out;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j < sorted.size() && sorted[j].burst == sorted[i].burst) ++j;
    burst_probes b;
    b.burst = sorted[i].burst;
    auto s = detail::screen_group(std::span<const probe_sample>(sorted.data() + i, j - i), opt, b.rejected);
    if (!s) return unexpected(s.error());
    b.probes = std::move(*s);
    out.rejected += b.rejected;
    if (!b.probes.empty()) out.bursts.push_back(std::move(b));
    i = j;
  }
  std::sort(out.bursts.begin(), out.bursts.end(),
            [](const burst_probes& x, const burst_probes& y) { return x.ref() < y.ref(); });
  if (gate && opt.filter_outliers) {
    const double slope = rough_slope(out.bursts);
    out.rejected = 0;
    for (auto& b : out.bursts) {
      gate_outliers(b, slope, opt.outlier_gate);
      if (opt.extreme_gate > 0) gate_extremes(b, slope, opt.extreme_gate);
      out.rejected += b.rejected;
    }
    // The gates can empty a burst (one that straddles a clock step: its two
    // halves contradict each other); every fit reads a burst's first, middle
    // and last probe, so an empty one goes (its probes are counted above).
    std::erase_if(out.bursts, [](const burst_probes& b) { return b.probes.empty(); });
  }
  if (out.bursts.empty()) return unexpected(errc::all_rejected);
  return out;
}

}  // namespace tsync::estimate
