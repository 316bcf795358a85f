// The batch conversions and the precomputed inverse must equal the scalar
// functions bit for bit, over random full-range inputs and edge values.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "tsync/kvm.hpp"

using namespace tsync;
using namespace tsync::kvm;

namespace {

constexpr std::uint64_t M1 = ~std::uint64_t{0};

std::uint64_t make_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

tsc_params random_params(std::mt19937_64& rng) {
  tsc_params p;
  p.frac_bits = static_cast<std::uint8_t>(rng() % 64);
  const unsigned bits = 1 + static_cast<unsigned>(rng() % 64);
  p.ratio = rng() >> (64 - bits);
  if (p.ratio == 0) p.ratio = 1;
  if (rng() % 8 == 0) p.ratio = std::uint64_t{1} << p.frac_bits;
  p.offset = rng();
  return p;
}

// Guest values that hit the edges of the inverse for p: S = 0, 1, max; S where
// the ceiling just fits or just overflows; S at exact multiples and off by one.
std::vector<std::uint64_t> edge_guests(const tsc_params& p, std::mt19937_64& rng) {
  std::vector<std::uint64_t> s = {0, 1, 2, M1, M1 - 1, std::uint64_t{1} << 63, (std::uint64_t{1} << 63) - 1};
  // Largest S whose host value fits: floor((2^64-1) * r / 2^f), and its neighbours.
  const u128 top = (static_cast<u128>(M1) * p.ratio) >> p.frac_bits;
  const std::uint64_t t = (top >> 64) ? M1 : static_cast<std::uint64_t>(top);
  for (std::uint64_t d = 0; d < 3; ++d) {
    s.push_back(t - d);
    s.push_back(t + d);
  }
  // Scaled values of random and special host ticks (exact multiples and neighbours).
  for (std::uint64_t h : {std::uint64_t{0}, std::uint64_t{1}, M1, M1 - 1, rng(), rng() >> 20, rng() >> 40}) {
    const std::uint64_t g = static_cast<std::uint64_t>((static_cast<u128>(h) * p.ratio) >> p.frac_bits);
    s.push_back(g);
    s.push_back(g + 1);
    s.push_back(g - 1);
  }
  for (auto& v : s) v += p.offset;  // to guest values
  return s;
}

void check_plan_against_scalar(const tsc_params& p, const std::vector<std::uint64_t>& guests) {
  auto plan = inverse_plan::make(p);
  REQUIRE(plan);
  for (std::uint64_t g : guests) {
    auto want = to_host(g, p);
    auto got = (*plan)(g);
    INFO("g " << g << " ratio " << p.ratio << " frac " << int(p.frac_bits) << " offset " << p.offset);
    REQUIRE(got.has_value() == want.has_value());
    if (want) REQUIRE(*got == *want);
  }
}

}  // namespace

TEST_CASE("the precomputed inverse equals the scalar ceil division on random full-range inputs") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int k = 0; k < 4000; ++k) {
    const tsc_params p = random_params(rng);
    std::vector<std::uint64_t> g(64);
    for (auto& v : g) v = rng();
    // Also values whose S is small enough to fit for tiny ratios.
    for (int i = 0; i < 16; ++i) g.push_back(p.offset + (rng() >> (rng() % 64)));
    check_plan_against_scalar(p, g);
  }
}

TEST_CASE("the precomputed inverse equals the scalar ceil division on edge values") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::vector<tsc_params> ps = {
      {0, 1, 0}, {0, M1, 0}, {0, 1, 63}, {0, M1, 63}, {0, std::uint64_t{1} << 63, 63}, {0, 3, 1},
      {0, 187650047023786ULL, 48}, {0, 2863312485ULL, 32}, {0, 402107109586651ULL, 48}, {0, 122380531ULL, 48},
      {0, intel.max_ratio, 48}, {0, amd.max_ratio, 32}, {0, (std::uint64_t{1} << 48) - 1, 48},
      {0, (std::uint64_t{1} << 48) + 1, 48}, {0, (std::uint64_t{1} << 63) + 1, 63}, {0, 2, 63}};
  for (int k = 0; k < 2000; ++k) ps.push_back(random_params(rng));
  for (auto p : ps) {
    for (std::uint64_t o : {std::uint64_t{0}, M1, rng()}) {
      p.offset = o;
      check_plan_against_scalar(p, edge_guests(p, rng));
    }
  }
}

TEST_CASE("batch to_guest equals scalar to_guest bit for bit and in place") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int k = 0; k < 300; ++k) {
    const tsc_params p = random_params(rng);
    std::vector<std::uint64_t> in(1 + rng() % 700), out(in.size());
    for (auto& v : in) v = rng() >> (rng() % 64);
    REQUIRE(to_guest(in, out, p));
    for (std::size_t i = 0; i < in.size(); ++i) REQUIRE(out[i] == to_guest(in[i], p));
    auto inplace = in;
    REQUIRE(to_guest(std::span<std::uint64_t>(inplace), p));
    REQUIRE(inplace == out);
  }
}

TEST_CASE("batch to_host equals scalar to_host bit for bit and in place") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  int checked = 0;
  for (int k = 0; k < 600; ++k) {
    tsc_params p = random_params(rng);
    std::vector<std::uint64_t> in(1 + rng() % 700), out(in.size());
    // Inputs that fit: guest values that are images of host ticks (no truncation).
    for (auto& v : in) {
      const std::uint64_t h = rng() >> (rng() % 64);
      const u128 sc = (static_cast<u128>(h) * p.ratio) >> p.frac_bits;
      v = (sc >> 64 ? static_cast<std::uint64_t>(h & 0xffff) : static_cast<std::uint64_t>(sc)) + p.offset;
    }
    bool all_fit = true;
    for (auto v : in) all_fit = all_fit && to_host(v, p).has_value();
    auto r = to_host(in, out, p);
    if (!all_fit) {
      REQUIRE_FALSE(r);
      continue;
    }
    REQUIRE(r);
    for (std::size_t i = 0; i < in.size(); ++i) REQUIRE(out[i] == *to_host(in[i], p));
    auto inplace = in;
    REQUIRE(to_host(std::span<std::uint64_t>(inplace), p));
    REQUIRE(inplace == out);
    ++checked;
  }
  CHECK(checked > 300);
}

TEST_CASE("batch to_host reports the index of the first overflow and converts the prefix") {
  const tsc_params p{0, std::uint64_t{1} << 47, 48};  // half speed: S >= 2^63 overflows
  for (std::size_t bad : {std::size_t{0}, std::size_t{5}, std::size_t{255}, std::size_t{256}, std::size_t{1000}}) {
    std::vector<std::uint64_t> in(1200), out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = 1000 + i;
    in[bad] = std::uint64_t{1} << 63;
    in[bad + 7] = M1;  // a second overflow later must not be reported
    auto r = to_host(in, out, p);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::overflow);
    CHECK(r.error().index == bad);
    for (std::size_t i = 0; i < bad; ++i) REQUIRE(out[i] == 2 * (1000 + i));
    // In place: same index, same prefix.
    auto inplace = in;
    auto r2 = to_host(std::span<std::uint64_t>(inplace), p);
    REQUIRE_FALSE(r2);
    CHECK(r2.error().index == bad);
    for (std::size_t i = 0; i < bad; ++i) REQUIRE(inplace[i] == 2 * (1000 + i));
  }
}

TEST_CASE("batch conversions reject mismatched spans and invalid parameters") {
  std::vector<std::uint64_t> in(4), out(3);
  auto a = to_guest(in, out, tsc_params::unscaled(0));
  REQUIRE_FALSE(a);
  CHECK(a.error().code == errc::invalid_argument);
  auto b = to_host(in, out, tsc_params::unscaled(0));
  REQUIRE_FALSE(b);
  CHECK(b.error().code == errc::invalid_argument);
  std::vector<std::uint64_t> out4(4);
  CHECK(to_host(in, out4, tsc_params{0, 0, 48}).error().code == errc::zero_ratio);
  CHECK(to_guest(in, out4, tsc_params{0, 1, 70}).error().code == errc::bad_frac_bits);
  CHECK(inverse_plan::make(tsc_params{0, 0, 32}).error() == errc::zero_ratio);
  // Empty ranges are fine.
  CHECK(to_host(std::span<const std::uint64_t>(), std::span<std::uint64_t>(), tsc_params::unscaled(5)));
}
