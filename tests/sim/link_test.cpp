#include <catch2/catch.hpp>
#include <cstdint>

#include "tsync/sim/link_model.hpp"

using namespace tsync::sim;

// The code of a validation: errc::ok when valid.
static tsync::errc code_of(const tsync::expected<void, tsync::errc>& v) { return v ? tsync::errc::ok : v.error(); }

TEST_CASE("Each delivered message takes at least the minimum delay of its direction", "[sim]") {
  link_model m;
  m.fwd = {15'000, exponential(5'000)};
  m.back = {5'000, exponential(5'000)};
  REQUIRE(code_of(validate(m)) == tsync::errc::ok);
  link_state l(m, 11);
  double sum_f = 0;
  const int n = 50000;
  for (int i = 0; i < n; ++i) {
    const auto f = l.forward(1000);
    const auto b = l.backward(1000);
    REQUIRE(f.has_value());
    REQUIRE(b.has_value());
    REQUIRE(*f >= 1000 + 15'000);
    REQUIRE(*b >= 1000 + 5'000);
    sum_f += static_cast<double>(*f - 1000);
  }
  CHECK(sum_f / n == Approx(20'000).epsilon(0.01));
  CHECK(m.asymmetry_floor(0) == 5'000);
}

TEST_CASE("Loss duplicate reorder and spike rates match their probabilities", "[sim]") {
  const std::uint64_t seed = 5;
  INFO("seed " << seed);
  link_model m;
  m.loss_prob = 0.1;
  m.dup_prob = 0.05;
  m.reorder_prob = 0.02;
  m.spike_prob = 0.01;
  link_state l(m, seed);
  const int n = 200000;
  int lost = 0, dup = 0, reo = 0, spk = 0;
  for (int i = 0; i < n; ++i) {
    const auto d = l.send(i % 2 ? direction::forward : direction::backward, i);
    if (!d) {
      ++lost;
      continue;
    }
    if (d.duplicate) {
      ++dup;
      REQUIRE(*d.duplicate >= d.arrival);
    }
    if (d.reordered) {
      ++reo;
      REQUIRE(d.arrival - i >= 10'000 + 2'500'000);
    }
    if (d.spiked) {
      ++spk;
      REQUIRE(d.arrival - i >= 10'000 + 100'000);
    }
  }
  const double delivered = n - lost;
  CHECK(lost / double(n) == Approx(0.1).margin(0.003));
  CHECK(dup / delivered == Approx(0.05).margin(0.002));
  CHECK(reo / delivered == Approx(0.02).margin(0.0015));
  CHECK(spk / delivered == Approx(0.01).margin(0.001));
  CHECK(l.sent() == std::uint64_t(n));
  CHECK(l.lost() == std::uint64_t(lost));
  CHECK(l.duplicated() == std::uint64_t(dup));
}

TEST_CASE("A link replays the same outcomes for the same seed and calls", "[sim]") {
  link_model m;
  m.loss_prob = 0.3;
  m.dup_prob = 0.2;
  link_state a(m, 9), b(m, 9), c(m, 10);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const auto x = a.send(direction::forward, i * 1000);
    const auto y = b.send(direction::forward, i * 1000);
    const auto z = c.send(direction::forward, i * 1000);
    REQUIRE(x.delivered == y.delivered);
    REQUIRE(x.arrival == y.arrival);
    REQUIRE(x.duplicate == y.duplicate);
    differs = differs || x.delivered != z.delivered || x.arrival != z.arrival;
  }
  CHECK(differs);
}

TEST_CASE("An asymmetry step changes one direction's minimum delay from its time on", "[sim]") {
  link_model m;
  m.fwd = {10'000, constant(0)};
  m.back = {10'000, constant(0)};
  m.asymmetry_steps.push_back({300, direction::forward, 10'000});
  link_state l(m, 1, 1000);  // step times are relative to 1000
  CHECK(*l.forward(1299) == 1299 + 10'000);
  CHECK(*l.forward(1300) == 1300 + 20'000);
  CHECK(*l.backward(1300) == 1300 + 10'000);
  CHECK(m.asymmetry_floor(0) == 0);
  CHECK(m.asymmetry_floor(300) == 5'000);
}

TEST_CASE("Invalid link models are rejected", "[sim]") {
  link_model m;
  m.loss_prob = 1.5;
  CHECK(code_of(validate(m)) == tsync::errc::invalid_argument);
  m = {};
  m.fwd.queue = normal(0, 100);  // can be negative
  CHECK(code_of(validate(m)) == tsync::errc::invalid_argument);
  m = {};
  m.back.min_ns = -1;
  CHECK(code_of(validate(m)) == tsync::errc::invalid_argument);
  m = {};
  m.asymmetry_steps.push_back({10, direction::backward, -20'000});
  CHECK(code_of(validate(m)) == tsync::errc::invalid_argument);
  m = {};
  m.spike_delay = exponential(-1);
  CHECK(code_of(validate(m)) == tsync::errc::invalid_argument);
}
