#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tsync/sim/random.hpp"

using namespace tsync::sim;

namespace {
std::vector<double> draw(const distribution& d, std::uint64_t seed, std::size_t n) {
  rng r(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = d.sample(r);
  std::sort(v.begin(), v.end());
  return v;
}
double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double quantile(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))];
}
}  // namespace

TEST_CASE("The generator is deterministic per seed and differs between seeds", "[sim]") {
  rng a(42), b(42), c(43);
  bool all_equal_c = true;
  for (int i = 0; i < 1000; ++i) {
    const auto x = a(), y = b(), z = c();
    REQUIRE(x == y);
    all_equal_c = all_equal_c && x == z;
  }
  CHECK_FALSE(all_equal_c);
}

TEST_CASE("The generator's first outputs are pinned so that traces stay reproducible across platforms", "[sim]") {
  // xoshiro256** seeded by splitmix64(0): pinned values guard against accidental changes.
  rng r(0);
  const std::uint64_t first = r();
  rng r2(0);
  REQUIRE(r2() == first);
  std::uint64_t s = 0;
  REQUIRE(splitmix64(s) == 0xE220A8397B1DCDAFULL);
  REQUIRE(derive_seed(1, 0) != derive_seed(1, 1));
  REQUIRE(derive_seed(1, 0) != derive_seed(2, 0));
}

TEST_CASE("Uniform doubles lie in the unit interval and bounded integers stay below the bound", "[sim]") {
  rng r(7);
  for (int i = 0; i < 10000; ++i) {
    const double u = r.uniform01();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    const double v = r.uniform01_open_low();
    REQUIRE(v > 0.0);
    REQUIRE(v <= 1.0);
    REQUIRE(r.below(13) < 13);
  }
  REQUIRE(r.below(0) == 0);
}

TEST_CASE("Sample means and quantiles of each distribution match their theory", "[sim]") {
  const std::uint64_t seed = 20240611;
  INFO("seed " << seed);
  const std::size_t n = 200000;
  SECTION("constant") {
    auto v = draw(constant(5), seed, 100);
    CHECK(v.front() == 5);
    CHECK(v.back() == 5);
  }
  SECTION("uniform") {
    auto v = draw(uniform(100, 300), seed, n);
    CHECK(v.front() >= 100);
    CHECK(v.back() < 300);
    CHECK(mean_of(v) == Approx(200).epsilon(0.005));
    CHECK(quantile(v, 0.25) == Approx(150).epsilon(0.01));
  }
  SECTION("exponential") {
    auto v = draw(exponential(2000), seed, n);
    CHECK(v.front() >= 0);
    CHECK(mean_of(v) == Approx(2000).epsilon(0.01));
    CHECK(quantile(v, 0.5) == Approx(2000 * std::log(2.0)).epsilon(0.02));
    CHECK(quantile(v, 0.99) == Approx(2000 * std::log(100.0)).epsilon(0.03));
  }
  SECTION("normal") {
    auto v = draw(normal(10, 200), seed, n);
    CHECK(mean_of(v) == Approx(10).margin(3));
    CHECK(quantile(v, 0.5) == Approx(10).margin(4));
    CHECK(quantile(v, 0.8413) == Approx(210).margin(5));
    double ss = 0;
    for (double x : v) ss += (x - 10) * (x - 10);
    CHECK(std::sqrt(ss / static_cast<double>(n)) == Approx(200).epsilon(0.01));
  }
  SECTION("lognormal") {
    auto v = draw(lognormal(1000, 0.5), seed, n);
    CHECK(v.front() > 0);
    CHECK(quantile(v, 0.5) == Approx(1000).epsilon(0.01));
    CHECK(mean_of(v) == Approx(lognormal(1000, 0.5).mean()).epsilon(0.01));
  }
  SECTION("pareto") {
    auto v = draw(pareto(2000, 3.0), seed, n);
    CHECK(v.front() >= 2000);
    CHECK(mean_of(v) == Approx(3000).epsilon(0.02));
    CHECK(quantile(v, 0.5) == Approx(2000 * std::pow(2.0, 1.0 / 3.0)).epsilon(0.01));
    CHECK(std::isinf(pareto(2000, 1.0).mean()));
  }
  SECTION("bimodal") {
    const auto d = bimodal(1000, 50000, 2000, 0.2);
    auto v = draw(d, seed, n);
    CHECK(mean_of(v) == Approx(d.mean()).epsilon(0.01));
    const auto above = static_cast<double>(std::count_if(v.begin(), v.end(), [](double x) { return x >= 50000; }));
    CHECK(above / static_cast<double>(n) == Approx(0.2).margin(0.005));
  }
}

TEST_CASE("Distributions print and parse back exactly", "[sim]") {
  for (const auto& d : {constant(-3.5), uniform(0, 1e6), exponential(2000), normal(0, 200), lognormal(1500, 0.25),
                        pareto(2000, 1.2), bimodal(1000, 30000, 2000, 0.125)}) {
    auto back = parse_distribution(to_string(d));
    INFO(to_string(d));
    REQUIRE(back.has_value());
    REQUIRE(*back == d);
  }
  REQUIRE(parse_distribution("exponential:5").has_value());
}

TEST_CASE("Malformed distributions are rejected with a specific error", "[sim]") {
  CHECK(parse_distribution("exp").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("gamma:1,2").error() == tsync::errc::not_found);
  CHECK(parse_distribution("exp:1,2").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("exp:abc").error() == tsync::errc::malformed_number);
  CHECK(parse_distribution("exp:").error() == tsync::errc::malformed_number);
  CHECK(parse_distribution("exp:-5").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("uniform:5,1").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("pareto:0,1").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("bimodal:1,2,3,1.5").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("normal:1,2,3").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("exp:1,2,3,4,5").error() == tsync::errc::invalid_argument);
  CHECK(parse_distribution("exp:nan").error() != tsync::errc::ok);
}
