#include "synth.hpp"  // first: enables the Eigen estimators when available

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tsync/estimate.hpp"
#include "tsync/sim.hpp"

using namespace tsync;
using namespace tsync::estimate;

TEST_CASE("the kalman smoother reproduces a line through exact measurements") {
  // Offset 100 + 5 ns/s: exact measurements every 10 s, knots in between.
  std::vector<tsync::estimate::detail::kalman_knot> kn;
  for (int i = 0; i <= 20; ++i) {
    const double t = 2.5 * i;
    const bool meas = i % 4 == 0;
    kn.push_back({t, meas, meas ? 100 + 5 * t : 0.0, meas ? 1e-6 : 0.0, false});
  }
  const auto r = tsync::estimate::detail::kalman_run(kn, 1.0, 1.0, true);
  REQUIRE(r.x.size() == kn.size());
  for (std::size_t k = 0; k < kn.size(); ++k) {
    INFO("knot " << k);
    CHECK(r.x[k][0] == Approx(100 + 5 * kn[k].t).margin(1e-3));
    CHECK(r.x[k][1] == Approx(5).margin(1e-3));
    CHECK(r.p[k][0] >= 0);
  }
  // Between measurements the posterior variance is larger than at them.
  CHECK(r.p[2][0] > r.p[0][0]);
  CHECK(r.p[2][0] > r.p[4][0]);
}

TEST_CASE("kalman follows frequency wander as well as the per-burst envelope and its hard interval holds") {
  auto sc = tsync::sim::preset("drift_wander");
  REQUIRE(sc);
  sc->duration_ns = 600'000'000'000;
  for (std::uint64_t seed : {1u, 2u}) {
    INFO("seed " << seed);
    auto tr = tsync::sim::simulate(*sc, seed);
    REQUIRE(tr);
    auto k = fit("kalman", tr->probes);
    auto s = fit("split_envelope", tr->probes);
    REQUIRE(k);
    REQUIRE(s);
    double ek = 0, es = 0;
    std::size_t n = 0, outside = 0, stat_in = 0;
    for (const auto& pt : tsync::sim::truth_grid(*tr, 500'000'000)) {
      const auto g = tsync::at_ns<tsync::guest>(pt.guest);
      const auto host = tsync::at_ns<tsync::host>(pt.host);
      auto hk = k->to_host(g);
      auto hs = s->to_host(g);
      auto hb = k->hard_bounds(g);
      auto sb = k->stat_bounds(g);
      REQUIRE(hk);
      REQUIRE(hs);
      REQUIRE(hb);
      REQUIRE(sb);
      ek += std::pow(static_cast<double>((*hk - host).count()), 2);
      es += std::pow(static_cast<double>((*hs - host).count()), 2);
      if (!hb->contains(host)) ++outside;
      if (sb->contains(host)) ++stat_in;
      ++n;
    }
    const double rk = std::sqrt(ek / static_cast<double>(n)), rs = std::sqrt(es / static_cast<double>(n));
    INFO("rms kalman " << rk << " split_envelope " << rs << " stat coverage " << static_cast<double>(stat_in) / static_cast<double>(n));
    CHECK(outside == 0);
    CHECK(rk < 1.3 * rs);
    CHECK(static_cast<double>(stat_in) > 0.5 * static_cast<double>(n));
  }
}
