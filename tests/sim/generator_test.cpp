#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <set>

#include "tsync/sim/generator.hpp"

using namespace tsync::sim;

namespace {
scenario short_preset(const char* name) {
  auto sc = *preset(name);
  sc.duration_ns = 60'000'000'000;
  return sc;
}
}  // namespace

TEST_CASE("The same seed gives identical probes and a different seed different ones", "[sim]") {
  for (const auto& n : preset_names()) {
    INFO(n);
    auto sc = short_preset(n.c_str());
    auto a = simulate(sc, 1), b = simulate(sc, 1), c = simulate(sc, 2);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    REQUIRE(c.has_value());
    CHECK(a->probes == b->probes);
    CHECK(a->probes != c->probes);
  }
}

TEST_CASE("Every preset simulates with the expected number of bursts and probes", "[sim]") {
  for (const auto& n : preset_names()) {
    INFO(n);
    auto sc = *preset(n);
    auto t = simulate(sc, 7);
    REQUIRE(t.has_value());
    CHECK(t->bursts.size() == sc.burst_count());
    CHECK(t->stats.sent == std::uint64_t{sc.burst_count()} * sc.probes_per_burst);
    CHECK(t->probes.size() == t->probe_truths.size());
    CHECK(t->stats.recorded == t->probes.size());
    if (n != "heavy_tail") CHECK(t->probes.size() == t->stats.sent);
    for (std::size_t i = 1; i < t->probes.size(); ++i) REQUIRE(t->probes[i].t1 >= t->probes[i - 1].t1);
    for (const auto& bi : t->bursts) {
      CHECK(bi.end_ns >= bi.start_ns);
      CHECK(bi.end_ns - bi.start_ns < sc.burst_interval_ns);
    }
  }
}

TEST_CASE("Without noise or glitches every probe brackets the true guest clock", "[sim]") {
  // causality: guest_at(t1) <= g <= guest_at(t2), i.e. U_i >= theta and L_i <= theta
  for (const char* n : {"quiet", "lopsided_queueing", "constant_asymmetry", "drift_wander", "clock_step",
                        "frequency_step", "asymmetry_step"}) {
    INFO(n);
    auto t = simulate(*preset(n), 3);
    REQUIRE(t.has_value());
    for (const auto& p : t->probes) {
      REQUIRE(p.t2 > p.t1);
      REQUIRE(t->truth.guest_at(p.t1) <= p.g);
      REQUIRE(p.g <= t->truth.guest_at(p.t2));
    }
  }
}

TEST_CASE("The one-way delays of recorded probes respect the minimum delays", "[sim]") {
  auto sc = *preset("constant_asymmetry");
  auto t = simulate(sc, 4);
  REQUIRE(t.has_value());
  std::int64_t min_f = INT64_MAX, min_b = INT64_MAX;
  for (const auto& pt : t->probe_truths) {
    min_f = std::min(min_f, pt.guest_rx_ns - pt.send_ns);
    min_b = std::min(min_b, pt.recv_ns - pt.guest_rx_ns);
  }
  CHECK(min_f >= 15'000);
  CHECK(min_b >= 5'000);
  CHECK(min_f < 15'100);  // 20679 draws of Exp(5 us) reach within 100 ns of the minimum
  CHECK(min_b < 5'100);
}

TEST_CASE("The hostile preset loses duplicates and mis-pairs probes at its configured rates", "[sim]") {
  auto t = simulate(*preset("heavy_tail"), 11);
  REQUIRE(t.has_value());
  const double sent = static_cast<double>(t->stats.sent);
  const double rec = static_cast<double>(t->stats.recorded);
  CHECK(1.0 - (rec - static_cast<double>(t->stats.duplicates + t->stats.mispaired)) / sent == Approx(0.10).margin(0.02));
  CHECK(static_cast<double>(t->stats.mispaired) / rec == Approx(0.01).margin(0.005));
  CHECK(static_cast<double>(t->stats.duplicates) / rec == Approx(0.005).margin(0.003));
  // Duplicate records repeat an id; mis-paired ones carry an id below that of the probe sent at their t1.
  std::set<std::uint64_t> seen;
  std::uint64_t dups = 0, mis = 0, violations = 0;
  for (std::size_t i = 0; i < t->probes.size(); ++i) {
    const auto& p = t->probes[i];
    const auto& pt = t->probe_truths[i];
    if (!seen.insert(p.id).second) {
      ++dups;
      REQUIRE(pt.duplicate);
    }
    if (pt.mispaired) {
      ++mis;
      REQUIRE(p.id < pt.sent_id);
      if (i + 1 < t->probes.size() && t->probe_truths[i + 1].sent_id == pt.sent_id)
        REQUIRE(t->probes[i + 1].t1 == p.t1);
    }
    if (t->truth.guest_at(p.t1) > p.g) ++violations;
  }
  CHECK(dups == t->stats.duplicates);
  CHECK(mis == t->stats.mispaired);
  CHECK(violations >= mis);  // a mis-paired g is older than its t1
}

TEST_CASE("Stamp noise and glitches make some probes break causality", "[sim]") {
  auto t = simulate(*preset("stamp_noise"), 5);
  REQUIRE(t.has_value());
  std::uint64_t glitched = 0, glitch_violations = 0;
  for (std::size_t i = 0; i < t->probes.size(); ++i) {
    if (!t->probe_truths[i].glitched) continue;
    ++glitched;
    if (t->truth.guest_at(t->probes[i].t1) > t->probes[i].g) ++glitch_violations;
  }
  CHECK(glitched == t->stats.glitched);
  CHECK(glitched > 0);
  CHECK(glitch_violations > glitched / 2);  // 20 us early beats 10 us + Exp(5 us) most of the time
}

TEST_CASE("Bursts rotate over vCPUs and ids are unique per sent probe", "[sim]") {
  auto sc = short_preset("quiet");
  sc.vcpus = 3;
  sc.burst_jitter_ns = 1'000'000'000;
  auto t = simulate(sc, 2);
  REQUIRE(t.has_value());
  std::set<std::uint64_t> ids;
  for (const auto& p : t->probes) {
    REQUIRE(p.vcpu == p.burst % 3);
    ids.insert(p.id);
  }
  CHECK(ids.size() == t->probes.size());
  CHECK(t->burst_probes(2).size() == sc.probes_per_burst);
  auto grid = truth_grid(*t, 100'000'000);
  REQUIRE(grid.size() > 500);
  CHECK(grid[1].host - grid[0].host == 100'000'000);
  CHECK(grid[0].guest == t->truth.guest_at(grid[0].host));
}

TEST_CASE("An invalid scenario is refused by the generator", "[sim]") {
  scenario sc;
  sc.probes_per_burst = 0;
  CHECK(simulate(sc, 1).error() == tsync::errc::invalid_argument);
  sc = {};
  sc.burst_interval_ns = 1;
  CHECK(simulate(sc, 1).error() == tsync::errc::oversized);
}
