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
[[nodiscard]] inline double kth_largest(std::vector<double> v, std::size_t k) {
  k = std::min(k, v.size());
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end(), std::greater<>());
  return v[k - 1];
}
[[nodiscard]] inline double median_of(std::vector<double> v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace detail

/// Rough drift (dimensionless) from burst to burst: the median of the slopes
/// between consecutive bursts' median midpoint offsets. Robust to a step
/// (which spoils one slope). 0 with fewer than two bursts.
[[nodiscard]] inline double rough_slope(const std::vector<burst_probes>& bursts) {
  std::vector<double> mids;
  std::vector<std::int64_t> refs;
  for (const auto& b : bursts) {
    if (b.probes.empty()) continue;
    std::vector<double> o;
    o.reserve(b.probes.size());
    const i128 base = midpoint_offset(b.probes.front());
    for (const auto& p : b.probes) o.push_back(static_cast<double>(midpoint_offset(p) - base));
    mids.push_back(static_cast<double>(base) + detail::median_of(std::move(o)));
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

/// Outlier gate for one burst (in place). Each side is de-trended with
/// `slope`; a probe whose lower bound `t1 − g` lies more than
/// `gate · (q05 − median)` above the burst's 5 % upper quantile of lower bounds
/// (or whose upper bound lies that far below the 5 % lower quantile of upper
/// bounds) is dropped. Bursts of fewer than 8 probes are left alone.
inline void gate_outliers(burst_probes& b, double slope, double gate) {
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
/// (no probes), `all_rejected` (none survive), options errors from
/// `validate`, and in strict mode the first bad probe's error.
/// With `gate` true and `opt.filter_outliers`, the outlier gate runs per burst.
[[nodiscard]] inline expected<prepared_probes, errc> prepare(std::span<const probe_sample> probes,
                                                            const fit_options& opt, bool gate) {
  if (auto v = validate(opt); !v) return unexpected(v.error());
  if (probes.empty()) return unexpected(errc::empty_input);
  std::vector<probe_sample> sorted(probes.begin(), probes.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const probe_sample& x, const probe_sample& y) { return x.burst < y.burst; });
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
      out.rejected += b.rejected;
    }
  }
  if (out.bursts.empty()) return unexpected(errc::all_rejected);
  return out;
}

}  // namespace tsync::estimate
