#pragma once
/// \file
/// Per-burst envelope points: one bias-corrected offset measurement per burst,
/// with a variance model, for the estimators that smooth or regress over
/// bursts (`regression`, `kalman`).
///
/// For a burst of N probes the de-trended lower bounds `a_i = t1 − g` and upper
/// bounds `u_i = t2 − g` give the split envelope `[max a, min u]`. Its centre is
/// biased by half the difference of the two directions' smallest queueing
/// delays, `(min q_b − min q_f)/2`, which matters when one direction queues far
/// more than the other (tens of ns with 339 probes and a 10:1 ratio). The
/// spacings of the extreme order statistics estimate those minima: for
/// exponential queueing (and, near the minimum, for any queueing density that
/// is positive at zero) the Rényi representation makes `(N − j)·S_j`, with
/// `S_j` the gap between the j-th and (j+1)-th most extreme bound, independent
/// draws of the queueing mean `1/λ`, so `E[min q] = 1/(N·λ)` is estimated
/// without bias from the first `k` spacings. The corrected centre is
///
///     c = (max a + min u)/2 + (m̂_f − m̂_b)/2,      m̂ = (1/k)·Σ_j (N − j)·S_j / N
///
/// and its variance model is `(m̂_f² + m̂_b²)/4 · (1 + 1/k)` (plus a rounding
/// floor): the variance of an exponential minimum is its squared mean, and the
/// correction is independent of the minimum. A constant difference of the
/// minimum delays (the asymmetry floor) is, as always, not identifiable.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/burst.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// One burst's bias-corrected envelope centre.
struct envelope_point {
  std::int64_t ref = 0;   ///< guest time of the measurement (the burst's median guest stamp)
  std::int64_t base = 0;  ///< offsets below are relative to this (ns)
  double centre = 0;      ///< corrected centre, host − guest at `ref`, minus `base` (ns)
  double raw_centre = 0;  ///< the uncorrected split-envelope centre, minus `base` (ns)
  double var = 0;         ///< model variance of `centre` (ns²)
  interval hard{};        ///< causality interval of the offset at `ref` (absolute, widened by max_drift)
  fit_stats stats{};
  std::uint32_t burst = 0;
  std::size_t index = 0;  ///< position of the burst in the input vector
};

namespace detail {

/// Estimated mean of the smallest queueing delay from the spacings of the
/// sorted extremes `v` (most extreme first, distances growing), see the file
/// comment. `n` is the burst's probe count.
template <class = void>
[[nodiscard]] inline double min_queue_estimate(const std::vector<double>& v, std::size_t k) {
  const std::size_t n = v.size();
  if (n < 2 || k == 0) return 0.0;
  double s = 0;
  for (std::size_t j = 1; j <= k; ++j) s += static_cast<double>(n - j) * std::fabs(v[j - 1] - v[j]);
  return s / static_cast<double>(k) / static_cast<double>(n);
}

}  // namespace detail

/// The envelope point of one screened burst, de-trended with `slope`.
/// With `correct` false the centre is the raw split-envelope centre (the
/// variance model is the same). Errors: `empty_input`, `infeasible` (an empty
/// causality interval).
template <class = void>
[[nodiscard]] inline expected<envelope_point, errc> envelope_point_of(const burst_probes& b, double slope,
                                                                     const fit_options& opt, bool correct = true) {
  if (b.probes.empty()) return unexpected(errc::empty_input);
  envelope_point e;
  e.ref = b.ref();
  e.base = lower_bound_of(b.probes.front());
  e.burst = b.burst;
  e.stats = detail::burst_stats(b);
  auto h = detail::hard_envelope(b, e.ref, opt.max_drift);
  if (!h) return unexpected(h.error());
  e.hard = *h;
  const std::size_t n = b.probes.size();
  std::vector<double> a(n), u(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = b.probes[i];
    const double trend = slope * static_cast<double>(static_cast<i128>(p.g) - e.ref);
    a[i] = static_cast<double>(lower_bound_of(p) - e.base) - trend;
    u[i] = static_cast<double>(upper_bound_of(p) - e.base) - trend;
  }
  std::sort(a.begin(), a.end(), std::greater<>());  // most extreme (largest lower bound) first
  std::sort(u.begin(), u.end());                    // smallest upper bound first
  const std::size_t k = std::min<std::size_t>(n > 1 ? n - 1 : 0, std::max<std::size_t>(1, n / 8));
  const double mf = detail::min_queue_estimate(a, k);
  const double mb = detail::min_queue_estimate(u, k);
  e.raw_centre = (a.front() + u.front()) / 2.0;
  e.centre = correct ? e.raw_centre + (mf - mb) / 2.0 : e.raw_centre;
  const double kk = static_cast<double>(std::max<std::size_t>(k, 1));
  e.var = (mf * mf + mb * mb) / 4.0 * (1.0 + 1.0 / kk) + 0.25;
  return e;
}

/// Envelope points of every burst (bursts whose causality interval is empty
/// are skipped; their probes are added to `lost`).
template <class = void>
[[nodiscard]] inline std::vector<envelope_point> envelope_points(const std::vector<burst_probes>& bursts, double slope,
                                                                const fit_options& opt, std::uint64_t& lost,
                                                                bool correct = true) {
  std::vector<envelope_point> out;
  out.reserve(bursts.size());
  for (std::size_t i = 0; i < bursts.size(); ++i) {
    const auto& b = bursts[i];
    auto e = envelope_point_of(b, slope, opt, correct);
    if (e) {
      e->index = i;
      out.push_back(*e);
    } else {
      lost += b.probes.size() + b.rejected;
    }
  }
  return out;
}

/// Two-sided quantile of Student's t with `dof` degrees of freedom for
/// coverage `p` (Cornish–Fisher expansion around the normal quantile; within
/// 1 % for dof >= 3). Infinite dof (or <= 0) gives the normal quantile.
[[nodiscard]] inline double student_quantile_two_sided(double p, double dof) noexcept {
  const double z = normal_quantile_two_sided(p);
  if (!(dof > 0) || !std::isfinite(dof)) return z;
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * dof) + (5 * z5 + 16 * z3 + 3 * z) / (96 * dof * dof) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * dof * dof * dof);
}

}  // namespace tsync::estimate
