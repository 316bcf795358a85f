#include "synth.hpp"  // first: enables the Eigen estimators when available

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "tsync/estimate.hpp"

using namespace tsync;
using namespace tsync::estimate;

namespace {
probe_sample P(std::int64_t t1, std::int64_t g, std::int64_t t2, std::uint64_t id = 0, std::uint32_t burst = 0) {
  return probe_sample{t1, g, t2, id, burst, 0};
}
}  // namespace

TEST_CASE("the offset is host minus guest and a probe bounds it by t1 - g and t2 - g") {
  // Guest clock 500 ns behind... the host: host 1000 -> guest stamp 500 on arrival.
  std::vector<probe_sample> v{P(1000, 500, 1010)};
  auto e = fastest_response(v);
  REQUIRE(e);
  CHECK(e->offset == 505);  // (1000 + 1010)/2 - 500
  CHECK(e->hard.contains(500));  // the probe's interval, widened by 1 ns of rounding
  CHECK(e->hard.contains(510));
  CHECK(e->hard.width() <= 12);
  CHECK(e->ref == 500);
  // The negative of sync_sample.hpp's per-probe g - (t1 + t2)/2.
  CHECK(e->offset == -(500 - (1000 + 1010) / 2));
  // A guest ahead of the host gives a negative offset.
  std::vector<probe_sample> w{P(1000, 5000, 1010)};
  auto f = fastest_response(w);
  REQUIRE(f);
  CHECK(f->offset == -3995);
}

TEST_CASE("fastest response takes the fastest trip of each direction not the fastest round trip") {
  // Probe 2 has the smallest round trip (10 ns) but is asymmetric; probe 1
  // holds the fastest return (upper bound 40 - 100 = -60), probe 2 the
  // fastest forward trip (lower bound 100 - 160 = -60): the offset is -60,
  // where the fastest round trip's midpoint says -55.
  std::vector<probe_sample> v{P(0, 100, 40, 1), P(100, 160, 110, 2), P(200, 300, 260, 3)};
  auto e = fastest_response(v);
  REQUIRE(e);
  CHECK(e->offset == -60);
  CHECK(e->hard.contains(-60));
  CHECK(e->hard.lo >= -62);
  CHECK(e->hard.hi <= -58);
  CHECK(e->stats.min_rtt == 10);
  CHECK(e->stats.probes_used == 3);
}

TEST_CASE("fastest response is unbiased where the fastest round trip is asymmetric") {
  // Symmetric minimum delays (10 ns each way), true offset 0: the probe with
  // the smallest round trip went out in 11 and came back in 10 (midpoint
  // -0.5), while other probes saw the 10 ns forward and return trips.
  std::vector<probe_sample> v{P(0, 11, 21, 1), P(100, 110, 130, 2), P(200, 230, 240, 3)};
  auto e = fastest_response(v);
  REQUIRE(e);
  CHECK(e->offset == 0);
}

TEST_CASE("fastest response rounds a half nanosecond midpoint up") {
  std::vector<probe_sample> v{P(0, 0, 3)};
  auto e = fastest_response(v);
  REQUIRE(e);
  CHECK(e->offset == 2);  // 1.5 -> 2
  std::vector<probe_sample> w{P(-3, 0, 0)};
  auto f = fastest_response(w);
  REQUIRE(f);
  CHECK(f->offset == -1);  // -1.5 -> -1
}

TEST_CASE("histogram peak handles identical offsets without dividing by zero") {
  std::vector<probe_sample> v;
  for (std::uint64_t i = 0; i < 50; ++i) v.push_back(P(1000 + 100 * static_cast<std::int64_t>(i), 1005 + 100 * static_cast<std::int64_t>(i) - 7, 1010 + 100 * static_cast<std::int64_t>(i), i));
  auto e = histogram_peak(v);
  REQUIRE(e);
  CHECK(e->offset == 7);
}

TEST_CASE("histogram peak bins signed offsets and returns the centre of the fullest bin") {
  // Offsets -100 (x1), -3 .. 3 cluster (x30), +100 (x1): llabs folding would merge +-100.
  std::vector<probe_sample> v;
  std::uint64_t id = 0;
  auto add = [&](std::int64_t off) {
    const std::int64_t g = 10'000 * static_cast<std::int64_t>(id);
    v.push_back(P(g + off - 5, g, g + off + 5, id++));
  };
  add(-100);
  for (int i = 0; i < 30; ++i) add(-3 + i % 7);
  add(100);
  auto e = histogram_peak(v);
  REQUIRE(e);
  CHECK(e->offset >= -3);
  CHECK(e->offset <= 3);
  // All offsets negative: the result stays negative (no llabs).
  std::vector<probe_sample> w;
  id = 0;
  for (int i = 0; i < 40; ++i) {
    const std::int64_t g = 10'000 * i;
    w.push_back(P(g - 5000 - i % 3 - 5, g, g - 5000 - i % 3 + 5, id++));
  }
  auto f = histogram_peak(w);
  REQUIRE(f);
  CHECK(f->offset <= -5000);
  CHECK(f->offset >= -5002);
}

TEST_CASE("median returns the middle midpoint offset and an order statistic interval") {
  std::vector<probe_sample> v;
  for (std::int64_t i = 0; i < 9; ++i)
    v.push_back(P(1000 * i + i * 10 - 50, 1000 * i, 1000 * i + i * 10 + 52, static_cast<std::uint64_t>(i)));
  // midpoints i*10 + 1, median i=4 -> 41; the intervals overlap in [30, 52]
  auto e = median(v);
  REQUIRE(e);
  CHECK(e->offset == 41);
  REQUIRE(e->stat_half);
  CHECK(*e->stat_half > 0);
  CHECK(e->hard.lo <= 30);
  CHECK(e->hard.hi >= 52);
  // Inconsistent intervals (no common offset) have no hard interval.
  std::vector<probe_sample> w{P(0, 0, 2, 1), P(1000, 900, 1002, 2)};
  CHECK(median(w).error() == errc::infeasible);
}

TEST_CASE("split envelope takes per-direction extremes and their centre") {
  // lower bounds t1-g: 90, 95, 80; upper bounds t2-g: 130, 110, 150 -> [95, 110] -> 102.5 -> 103 or 102
  std::vector<probe_sample> v{P(90, 0, 130, 1), P(95, 0, 110, 2), P(80, 0, 150, 3)};
  auto e = split_envelope(v);
  REQUIRE(e);
  CHECK(e->hard.lo <= 95);
  CHECK(e->hard.lo >= 94);
  CHECK(e->hard.hi >= 110);
  CHECK(e->hard.hi <= 111);
  CHECK((e->offset == 102 || e->offset == 103));
}

TEST_CASE("bad probes are rejected and counted by default and fatal in strict mode") {
  std::vector<probe_sample> v{P(0, 5, 10, 1), P(20, 25, 15, 2) /* t2 < t1 */, P(40, 45, 50, 3)};
  auto e = fastest_response(v);
  REQUIRE(e);
  CHECK(e->stats.probes_used == 2);
  CHECK(e->stats.probes_rejected == 1);
  fit_options strict;
  strict.strict = true;
  auto s = fastest_response(v, strict);
  REQUIRE_FALSE(s);
  CHECK(s.error() == errc::causality_violation);
}

TEST_CASE("duplicate ids keep one exact copy and drop conflicting copies") {
  std::vector<probe_sample> v{P(0, 5, 10, 1), P(0, 5, 10, 1), P(40, 45, 50, 2), P(41, 45, 52, 2), P(60, 65, 70, 3)};
  auto e = split_envelope(v);
  REQUIRE(e);
  CHECK(e->stats.probes_used == 2);      // id 1 once, id 3
  CHECK(e->stats.probes_rejected == 3);  // one copy of id 1, both of id 2
  fit_options strict;
  strict.strict = true;
  auto s = split_envelope(v, strict);
  REQUIRE_FALSE(s);
  CHECK(s.error() == errc::duplicate_id);
}

TEST_CASE("empty input and all rejected input give their own errors") {
  std::vector<probe_sample> none;
  CHECK(fastest_response(none).error() == errc::empty_input);
  CHECK(fit("convex_hull", none).error() == errc::empty_input);
  std::vector<probe_sample> bad{P(10, 5, 0, 1), P(20, 5, 0, 2)};
  CHECK(median(bad).error() == errc::all_rejected);
  for (auto n : names()) {
    INFO(n);
    auto r = fit(n, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::all_rejected);
  }
}

TEST_CASE("non-finite or out of domain options are refused") {
  std::vector<probe_sample> v{P(0, 5, 10, 1)};
  fit_options o;
  o.max_drift = std::nan("");
  CHECK(split_envelope(v, o).error() == errc::non_finite);
  CHECK(fit("segmented", v, o).error() == errc::non_finite);
  o.max_drift = -1;
  CHECK(split_envelope(v, o).error() == errc::invalid_argument);
  fit_options c;
  c.confidence = 1.5;
  CHECK(median(v, c).error() == errc::invalid_argument);
}

TEST_CASE("stamps whose differences would overflow are rejected not wrapped") {
  constexpr auto big = std::numeric_limits<std::int64_t>::max();
  constexpr auto small = std::numeric_limits<std::int64_t>::min();
  std::vector<probe_sample> v{P(big - 10, small, big, 1), P(0, 5, 10, 2)};
  auto e = fastest_response(v);
  REQUIRE(e);
  CHECK(e->stats.probes_rejected == 1);
  CHECK(e->offset == 0);
  fit_options strict;
  strict.strict = true;
  CHECK(fastest_response(v, strict).error() == errc::out_of_range);
}

TEST_CASE("an unknown estimator name is not found") {
  std::vector<probe_sample> v{P(0, 5, 10, 1)};
  CHECK(fit("no_such_estimator", v).error() == errc::not_found);
  auto n = names();
  CHECK(n.size() >= 6);
  CHECK(std::find(n.begin(), n.end(), "fastest_response") != n.end());
  CHECK(std::find(n.begin(), n.end(), "segmented") != n.end());
}
