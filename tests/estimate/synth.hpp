#pragma once
// A small probe generator with exact ground truth, for the estimator tests.
// (The full simulator lives in tsync/sim; this one keeps the tests of this
// folder self-contained.) It also registers the Eigen-based estimator in the
// default registry when Eigen is on the include path (the explicit include and
// registration call that every program using it makes).
#if defined(__has_include)
#if __has_include(<Eigen/Dense>)
#include "tsync/estimate/regression_eigen.hpp"
#define TSYNC_TEST_HAS_REGRESSION 1
namespace synth {
inline const bool regression_registered =
    tsync::estimate::register_regression(tsync::estimate::default_registry()).has_value();
}  // namespace synth
#endif
#endif

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tsync/core/sync_sample.hpp"

namespace synth {

/// The true map: host(guest) = guest + theta + rho * guest (+ step after step_at).
struct truth {
  double theta = 1.0e9;  // host − guest at guest 0 (ns)
  double rho = 0;        // drift
  double step = 0;       // offset step (ns), applied for guest >= step_at
  double step_at = 1e300;
  [[nodiscard]] double offset(double g) const { return theta + rho * g + (g >= step_at ? step : 0.0); }
  [[nodiscard]] double host(double g) const { return g + offset(g); }
  // Guest time of host time h (inverse; exact enough for tests).
  [[nodiscard]] double guest(double h) const {
    double g = (h - theta) / (1.0 + rho);
    if (g >= step_at) g = (h - theta - step) / (1.0 + rho);
    return g;
  }
};

struct config {
  truth t{};
  int bursts = 20;
  int per_burst = 64;
  double burst_interval = 1e9;  // ns (host)
  double probe_gap = 2e3;       // ns between probes of a burst (after the reply)
  double start = 5e9;           // host time of the first probe
  double mf = 10e3, mb = 10e3;  // minimum one-way delays
  double qf = 2e3, qb = 2e3;    // mean exponential queueing (0 = none)
  double mf_step = 0;           // added to mf for host >= asym_at
  double asym_at = 1e300;
  double glitch_rate = 0;       // share of guest stamps made early by glitch_ns
  double glitch_ns = 20e3;
};

/// Generate probes; `g` is floored so that causality holds exactly.
inline std::vector<tsync::probe_sample> make(const config& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> ef(c.qf > 0 ? 1.0 / c.qf : 1.0), eb(c.qb > 0 ? 1.0 / c.qb : 1.0);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::vector<tsync::probe_sample> out;
  for (int b = 0; b < c.bursts; ++b) {
    double h = c.start + b * c.burst_interval;
    for (int i = 0; i < c.per_burst; ++i) {
      const double t1 = std::floor(h);
      double f = c.mf + (c.qf > 0 ? ef(rng) : 0.0) + (t1 >= c.asym_at ? c.mf_step : 0.0);
      double bk = c.mb + (c.qb > 0 ? eb(rng) : 0.0);
      const double arrive = t1 + f;
      double g = std::floor(c.t.guest(arrive));
      const double t2 = std::ceil(arrive + bk);
      if (c.glitch_rate > 0 && u01(rng) < c.glitch_rate) g -= c.glitch_ns;
      tsync::probe_sample p;
      p.t1 = static_cast<std::int64_t>(t1);
      p.g = static_cast<std::int64_t>(g);
      p.t2 = static_cast<std::int64_t>(t2);
      p.id = static_cast<std::uint64_t>(i);
      p.burst = static_cast<std::uint32_t>(b);
      out.push_back(p);
      h = t2 + c.probe_gap;
    }
  }
  return out;
}

}  // namespace synth
