#include "synth.hpp"  // first: enables the Eigen estimators when available

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tsync/estimate.hpp"

using namespace tsync;
using namespace tsync::estimate;

namespace {

// One burst of synthetic probes as a screened burst.
burst_probes one_burst(const synth::config& c, std::uint64_t seed) {
  auto v = synth::make(c, seed);
  std::uint64_t rej = 0;
  auto s = tsync::estimate::detail::screen_group(v, fit_options{}, rej);
  REQUIRE(s);
  burst_probes b;
  b.probes = std::move(*s);
  return b;
}

}  // namespace

TEST_CASE("the corrected envelope centre removes the bias of lopsided queueing") {
  // Forward queueing Exp(20 us), backward Exp(2 us), 339 probes: the raw
  // centre is biased by (E[min q_b] - E[min q_f])/2 = (5.9 - 59)/2 = -26.5 ns.
  synth::config c;
  c.bursts = 1;
  c.per_burst = 339;
  c.qf = 20e3;
  c.qb = 2e3;
  c.t.theta = 1e9;
  double sum_raw = 0, sum_cor = 0, sum_var = 0, sum_sq = 0;
  const int n = 400;
  for (int k = 0; k < n; ++k) {
    const auto seed = static_cast<std::uint64_t>(1000 + k);
    auto b = one_burst(c, seed);
    auto e = envelope_point_of(b, 0.0, fit_options{});
    REQUIRE(e);
    const double truth = c.t.offset(static_cast<double>(e->ref)) - static_cast<double>(e->base);
    sum_raw += e->raw_centre - truth;
    sum_cor += e->centre - truth;
    sum_sq += (e->centre - truth) * (e->centre - truth);
    sum_var += e->var;
    CHECK(e->hard.contains(static_cast<std::int64_t>(std::llround(truth)) + e->base));
  }
  const double bias_raw = sum_raw / n, bias_cor = sum_cor / n;
  INFO("raw bias " << bias_raw << " corrected bias " << bias_cor);
  CHECK(bias_raw == Approx(-26.5).margin(5.0));
  CHECK(std::fabs(bias_cor) < 5.0);
  // The variance model is of the right size (within a factor of two).
  const double mse = sum_sq / n, model_var = sum_var / n;
  INFO("mse " << mse << " model variance " << model_var);
  CHECK(mse < 2 * model_var);
  CHECK(mse > 0.5 * model_var);
}

TEST_CASE("the student quantile approaches the normal one and widens for few degrees of freedom") {
  const double z = normal_quantile_two_sided(0.95);
  CHECK(z == Approx(1.959964).margin(1e-5));
  CHECK(student_quantile_two_sided(0.95, 1e9) == Approx(z).margin(1e-6));
  CHECK(student_quantile_two_sided(0.95, 10) == Approx(2.228).epsilon(0.01));
  CHECK(student_quantile_two_sided(0.95, 5) == Approx(2.571).epsilon(0.02));
}

#ifdef TSYNC_TEST_HAS_REGRESSION
TEST_CASE("regression is unbiased under lopsided queueing and its statistical interval covers the truth") {
  // The raw-midpoint regression was biased by +1.4 us here.
  int covered = 0;
  const int runs = 6;
  for (int r = 0; r < runs; ++r) {
    const auto seed = static_cast<std::uint64_t>(77 + r);
    INFO("seed " << seed);
    synth::config c;
    c.bursts = 31;
    c.per_burst = 339;
    c.qf = 20e3;
    c.qb = 2e3;
    c.t.theta = -9.87e8;
    c.t.rho = 3e-6;
    auto v = synth::make(c, seed);
    auto m = fit("regression", v);
    REQUIRE(m);
    const auto& s = m->segments.front();
    const std::int64_t g = s.ref;
    const double truth = c.t.host(static_cast<double>(g));
    auto h = m->to_host(tsync::at_ns<tsync::guest>(g));
    REQUIRE(h);
    CHECK(std::fabs(static_cast<double>(tsync::raw_ns(*h)) - truth) < 40.0);
    auto hb = m->hard_bounds(tsync::at_ns<tsync::guest>(g));
    REQUIRE(hb);
    CHECK(static_cast<double>(tsync::raw_ns(hb->lo)) <= truth);
    CHECK(truth <= static_cast<double>(tsync::raw_ns(hb->hi)));
    auto sb = m->stat_bounds(tsync::at_ns<tsync::guest>(g));
    REQUIRE(sb);
    CHECK(sb->width().count() < 200);
    if (static_cast<double>(tsync::raw_ns(sb->lo)) <= truth && truth <= static_cast<double>(tsync::raw_ns(sb->hi)))
      ++covered;
  }
  // 95 % intervals: at least 4 of 6 cover (probability > 0.99 if honest).
  CHECK(covered >= 4);
}
#endif
