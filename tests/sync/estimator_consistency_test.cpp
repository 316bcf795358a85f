// A series whose probes contradict each other (no offset satisfies all their
// causality intervals) is refused by every named estimator the session can use,
// fastest_response included (issue 13 item 10: it used to write an offset ±1 s
// off with a "hard" interval ±11 µs wide).
#include <catch2/catch.hpp>

#include <vector>

#include "tsync/estimate/registry.hpp"
#include "tsync/sync/session.hpp"

TEST_CASE("named estimators refuse a series whose probes contradict each other") {
  // Probes 0..19 say offset (g - mid) ~ 0 with an 11 us round trip; probes 20..39
  // say ~ +1 s. Their intervals [g - t2, g - t1] do not intersect.
  std::vector<tsync::probe_sample> p;
  for (std::uint64_t i = 0; i < 40; ++i) {
    const std::int64_t t1 = 1'000'000 + static_cast<std::int64_t>(i) * 100'000;
    const std::int64_t t2 = t1 + 11'000 + static_cast<std::int64_t>(i % 3);
    const std::int64_t g = t1 + 5'500 + (i >= 20 ? 1'000'000'000 : 0);
    p.push_back(tsync::probe_sample{t1, g, t2, i, 0, 0});
  }
  for (auto name : tsync::estimate::names()) {
    INFO(name);
    auto est = tsync::sync::named_estimator(std::string(name));
    REQUIRE(est);
    auto e = (*est)(p);
    CHECK_FALSE(e);
  }
  auto fr = tsync::estimate::fit("fastest_response", p, {});
  REQUIRE_FALSE(fr);
  CHECK((fr.error() == tsync::errc::infeasible || fr.error() == tsync::errc::all_rejected));
}

TEST_CASE("fastest_response still answers a consistent series (the fastest probe's midpoint)") {
  std::vector<tsync::probe_sample> p;
  for (std::uint64_t i = 0; i < 10; ++i) {
    const std::int64_t t1 = 1'000'000 + static_cast<std::int64_t>(i) * 100'000;
    const std::int64_t rtt = i == 4 ? 2'000 : 10'000;
    p.push_back(tsync::probe_sample{t1, t1 + rtt / 2 + 777, t1 + rtt, i, 0, 0});
  }
  auto est = tsync::sync::named_estimator("fastest_response");
  REQUIRE(est);
  auto e = (*est)(p);
  REQUIRE(e);
  CHECK(e->offset == 777);
}
