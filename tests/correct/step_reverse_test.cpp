// Step-mode host -> guest is the Galois inverse of step-mode correction, the
// rule `tsync correct --reverse` documents (issue 13 item 15: 82 of 1,811
// random checks disagreed, all in step mode), and a step table whose map falls
// between two samples is not invertible (ambiguous).
#include <chrono>
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <vector>

#include "test_util.hpp"
#include "tsync/correct/sync_table.hpp"

using tsync::errc;
using tsync::sync_sample;
using tsync::correct::correction_mode;
using tsync::correct::outside_policy;
using tsync::correct::sync_table;

namespace {
sync_table step_table(std::vector<sync_sample> s) {
  auto t = sync_table::make(std::move(s), correction_mode::step, outside_policy::clamp);
  REQUIRE(t.has_value());
  return std::move(*t);
}
}  // namespace

TEST_CASE("step mode: to_guest is the first guest time whose corrected host time reaches h") {
  const auto seed = tsync_test::seed_for(1301);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  int checked = 0;
  for (int iter = 0; iter < 400; ++iter) {
    const bool scaled = r.coin(2);
    const std::uint8_t frac = scaled ? 32 : 0;
    const std::uint64_t ratio = scaled ? (std::uint64_t{1} << 32) / 2 + r.u64() % (std::uint64_t{1} << 32) : 1;
    std::vector<sync_sample> s;
    std::int64_t t = r.range(-1'000'000, 1'000'000);
    std::int64_t o = r.range(-1'000'000, 1'000'000);
    const std::size_t n = 1 + r.u64() % 8;
    for (std::size_t i = 0; i < n; ++i) {
      s.push_back(sync_sample{tsync::at_ns<tsync::guest>(t), tsync::guest_to_host(o), ratio, frac, std::nullopt});
      t += r.range(1, 100'000);
      o += r.range(0, 50'000);  // offsets that only step up: a monotone map
    }
    auto tab = step_table(s);
    REQUIRE(tab.invertible());
    for (int k = 0; k < 60; ++k) {
      const std::int64_t g0 = r.range(tsync::raw_ns(s.front().guest_time) - 1000, tsync::raw_ns(s.back().guest_time) + 1000);
      const auto c = tab.correct(tsync::at_ns<tsync::guest>(g0));
      REQUIRE(c);
      const std::int64_t h = tsync::raw_ns(*c) + r.range(-40'000, 40'000);
      const auto g = tab.to_guest(tsync::at_ns<tsync::host>(h));
      REQUIRE(g);
      const auto hg = tab.correct(*g);
      REQUIRE(hg);
      CHECK(tsync::raw_ns(*hg) >= h);
      const auto before = tab.correct(*g - std::chrono::nanoseconds(1));
      REQUIRE(before);
      CHECK(tsync::raw_ns(*before) < h);
      ++checked;
    }
  }
  CHECK(checked == 400 * 60);
}

TEST_CASE("step mode: host times in the gap after an offset step up map to the step's first guest time") {
  auto t = step_table({sync_sample{tsync::at_ns<tsync::guest>(100), tsync::guest_to_host(1000), 1, 0, std::nullopt}, sync_sample{tsync::at_ns<tsync::guest>(200), tsync::guest_to_host(2000), 1, 0, std::nullopt}});
  // correct(199) = 1199, correct(200) = 2200: no guest time maps into (1199, 2200).
  CHECK(tsync::raw_ns(*t.to_guest(tsync::at_ns<tsync::host>(1500))) == 200);
  CHECK(tsync::raw_ns(*t.to_guest(tsync::at_ns<tsync::host>(2200))) == 200);
  CHECK(tsync::raw_ns(*t.to_guest(tsync::at_ns<tsync::host>(1199))) == 199);
}

TEST_CASE("step mode: an offset that steps down between samples makes the table ambiguous") {
  // Sample host times rise (1100, 1150), but correct(149) = 1149 > ... and
  // correct(199) = 1199 > correct(200) = 1150: the map falls.
  auto t = step_table({sync_sample{tsync::at_ns<tsync::guest>(100), tsync::guest_to_host(1000), 1, 0, std::nullopt}, sync_sample{tsync::at_ns<tsync::guest>(200), tsync::guest_to_host(950), 1, 0, std::nullopt}});
  CHECK_FALSE(t.invertible());
  CHECK(t.to_guest(tsync::at_ns<tsync::host>(1160)).error() == errc::ambiguous);
}
