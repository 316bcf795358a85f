#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tsync/sim/clock_model.hpp"
#include "tsync/sim/random.hpp"

using namespace tsync::sim;

// The code of a validation: errc::ok when valid.
static tsync::errc code_of(const tsync::expected<void, tsync::errc>& v) { return v ? tsync::errc::ok : v.error(); }

namespace {
constexpr std::int64_t s = 1'000'000'000;
}

TEST_CASE("A clock with only an offset maps host to guest by subtracting it", "[sim]") {
  clock_model m;
  m.offset_ns = 1'234'567'890;
  auto t = truth_map::make(m, 1000 * s, 100 * s, 1);
  REQUIRE(t.has_value());
  for (std::int64_t h : {1000 * s, 1000 * s + 12345, 1050 * s + 7, 1100 * s, 900 * s, 2000 * s}) {
    CHECK(t->guest_at(h) == h - m.offset_ns);
    CHECK(t->offset_at(h) == m.offset_ns);
    CHECK(t->host_at(h - m.offset_ns) == h);
  }
}

TEST_CASE("A constant drift makes the guest gain exactly drift times the elapsed time", "[sim]") {
  clock_model m;
  m.offset_ns = -5000;
  m.drift_ppm = 20;
  auto t = truth_map::make(m, 10 * s, 600 * s, 3);
  REQUIRE(t.has_value());
  // After 500 s the guest has gained 10 ms.
  CHECK(t->guest_at(510 * s) == 510 * s + 5000 + 10'000'000);
  CHECK(t->rate_at(300 * s) == Approx(1.00002).epsilon(1e-12));
  CHECK(t->offset_at(510 * s) == -5000 - 10'000'000);
}

TEST_CASE("The truth round trip host_at of guest_at is within 1 ns for every clock feature", "[sim]") {
  const std::uint64_t seed = 99;
  INFO("seed " << seed);
  for (double drift : {-40.0, 0.0, 25.0}) {
    clock_model m;
    m.offset_ns = 777;
    m.drift_ppm = drift;
    m.freq_rw_ppb = 17.3;
    m.wander_ppm = 0.5;
    m.wander_period_ns = 600 * s;
    m.frequency_steps.push_back({200 * s, 5.0});
    auto t = truth_map::make(m, 1000 * s, 600 * s, seed);
    REQUIRE(t.has_value());
    rng r(seed);
    for (int i = 0; i < 20000; ++i) {
      const auto h = 1000 * s + static_cast<std::int64_t>(r.below(600ULL * 1'000'000'000ULL));
      const auto g = t->guest_at(h);
      const auto back = t->host_at(g);
      INFO("drift " << drift << " h " << h);
      REQUIRE(back <= h);
      REQUIRE(h - back <= 1);
      REQUIRE(t->guest_at(back) == g);
      if (drift > 0) REQUIRE(back == h);  // guest faster than the host everywhere: exact
    }
  }
}

TEST_CASE("The guest clock is monotonic between steps and pieces join without gaps", "[sim]") {
  clock_model m;
  m.drift_ppm = 3;
  m.freq_rw_ppb = 50;
  m.wander_ppm = 1;
  auto t = truth_map::make(m, 0, 100 * s, 5);
  REQUIRE(t.has_value());
  const auto& p = t->pieces();
  REQUIRE(p.size() == 1000);
  for (std::size_t i = 0; i + 1 < p.size(); ++i) {
    REQUIRE(p[i].h1 == p[i + 1].h0);
    REQUIRE(p[i].g1 == p[i + 1].g0);
    REQUIRE(p[i].g1 > p[i].g0);
  }
  std::int64_t prev = t->guest_at(0);
  for (std::int64_t h = 0; h <= 100 * s; h += 9'999'991) {
    const auto g = t->guest_at(h);
    REQUIRE(g >= prev);
    prev = g;
  }
}

TEST_CASE("An offset step makes the guest reading jump at the step instant", "[sim]") {
  clock_model m;
  m.offset_ns = 1000;
  m.offset_steps.push_back({300 * s, 100'000});
  m.offset_steps.push_back({400 * s, -50'000});
  auto t = truth_map::make(m, 10 * s, 600 * s, 1);
  REQUIRE(t.has_value());
  const std::int64_t at = 310 * s;
  CHECK(t->guest_at(at - 1) == at - 1 - 1000);
  CHECK(t->guest_at(at) == at - 1000 + 100'000);
  CHECK(t->offset_at(at) == 1000 - 100'000);
  CHECK(t->offset_at(410 * s) == 1000 - 50'000);
  // A skipped guest reading maps to the step instant; a repeated one to its first occurrence.
  CHECK(t->host_at(at - 1000 + 50'000) == at);
  const std::int64_t repeated = 410 * s - 1000 + 50'000 - 10;  // read twice (before and after the back step)
  CHECK(t->host_at(repeated) == 410 * s - 50'000 - 10);
}

TEST_CASE("A frequency step changes the rate from its instant on", "[sim]") {
  clock_model m;
  m.frequency_steps.push_back({300 * s, 5.0});
  auto t = truth_map::make(m, 0, 600 * s, 1);
  REQUIRE(t.has_value());
  CHECK(t->guest_at(300 * s) == 300 * s);
  CHECK(t->guest_at(400 * s) == 400 * s + 500'000);
  CHECK(t->rate_at(100 * s) == 1.0);
  CHECK(t->rate_at(350 * s) == Approx(1.000005).epsilon(1e-12));
}

TEST_CASE("A sinusoidal wander integrates to the analytic phase", "[sim]") {
  clock_model m;
  m.wander_ppm = 0.5;
  m.wander_period_ns = 600 * s;
  auto t = truth_map::make(m, 0, 600 * s, 1);
  REQUIRE(t.has_value());
  // phase(T) = A/ω (1 − cos ωT); at T = P/2 that is 2A/ω = 2·0.5e-6·600e9/(2π) ns.
  const double expect = 2 * 0.5e-6 * 600e9 / (2 * 3.14159265358979323846);
  CHECK(static_cast<double>(t->guest_at(300 * s) - 300 * s) == Approx(expect).margin(1.0));
  CHECK(std::abs(t->guest_at(600 * s) - 600 * s) <= 1);
}

TEST_CASE("Invalid clock models are rejected", "[sim]") {
  clock_model m;
  m.knot_ns = 0;
  CHECK(truth_map::make(m, 0, s, 1).error() == tsync::errc::invalid_argument);
  m = {};
  m.glitch_prob = 2;
  CHECK(code_of(validate(m)) == tsync::errc::invalid_argument);
  m = {};
  m.drift_ppm = std::numeric_limits<double>::quiet_NaN();
  CHECK(code_of(validate(m)) == tsync::errc::non_finite);
  m = {};
  m.offset_steps.push_back({-1, 5});
  CHECK(code_of(validate(m)) == tsync::errc::invalid_argument);
  m = {};
  CHECK(truth_map::make(m, 0, -1, 1).error() == tsync::errc::invalid_argument);
  m.offset_ns = std::numeric_limits<std::int64_t>::min();
  CHECK(truth_map::make(m, 1, s, 1).error() == tsync::errc::overflow);
}

TEST_CASE("Stamp noise quantisation and glitches move stamps but not the clock", "[sim]") {
  clock_model m;
  m.host_quantum_ns = 10;
  m.guest_quantum_ns = 100;
  stamp_model st{&m};
  rng r(1);
  bool gl = true;
  CHECK(st.host_stamp(1234, r) == 1230);
  CHECK(st.host_stamp(-1, r) == -10);
  CHECK(st.guest_stamp(1299, r, gl) == 1200);
  CHECK_FALSE(gl);
  m.glitch_prob = 1;
  m.glitch_ns = -20'000;
  CHECK(st.guest_stamp(100'000, r, gl) == 80'000);
  CHECK(gl);
  m = {};
  m.host_noise_ns = 200;
  double ss = 0;
  for (int i = 0; i < 20000; ++i) {
    const double e = static_cast<double>(st.host_stamp(0, r));
    ss += e * e;
  }
  CHECK(std::sqrt(ss / 20000) == Approx(200).epsilon(0.03));
}
