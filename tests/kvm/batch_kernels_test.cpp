// The batch inverse kernels (every copy the CPU runs: AVX-512, AVX2, baseline) against the scalar 128-bit
// division, per ratio class, with at least 2^20 values per class, and their
// overflow detection (first failing index, prefix, in place).
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tsync/kvm.hpp"

using namespace tsync;
using namespace tsync::kvm;

namespace {

constexpr std::uint64_t M1 = ~std::uint64_t{0};
constexpr std::uint64_t P63 = std::uint64_t{1} << 63;

// A fresh seed, or TSYNC_TEST_SEED to replay a printed one.
std::uint64_t make_seed() {
  if (const char* env = std::getenv("TSYNC_TEST_SEED")) return std::strtoull(env, nullptr, 10);
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

struct ratio_class {
  std::string name;
  std::uint8_t frac;
  std::uint64_t lo;  // smallest ratio
  std::uint64_t hi;  // largest ratio
};

const std::vector<ratio_class>& classes() {
  static const std::vector<ratio_class> c = {
      {"intel guest slower", 48, 1, (std::uint64_t{1} << 48) - 1},
      {"intel guest faster", 48, (std::uint64_t{1} << 48) + 1, intel.max_ratio},
      {"intel tiny ratio", 48, 1, std::uint64_t{1} << 27},
      {"amd guest slower", 32, 1, (std::uint64_t{1} << 32) - 1},
      {"amd guest faster", 32, (std::uint64_t{1} << 32) + 1, amd.max_ratio},
      {"ratio around 2^63", 48, P63 - (std::uint64_t{1} << 20), P63 + (std::uint64_t{1} << 20)},
      {"frac 63 ratio above 2^62", 63, std::uint64_t{1} << 62, M1},
      {"frac 0 any ratio", 0, 1, M1},
  };
  return c;
}

// A ratio in [lo, hi], log-uniform, with the class's fixed ratios mixed in.
std::uint64_t random_ratio(const ratio_class& c, std::mt19937_64& rng, int k) {
  switch (k) {
    case 0: return c.lo;
    case 1: return c.hi;
    case 2: return std::clamp<std::uint64_t>(122380531ULL, c.lo, c.hi);
    case 3: return std::clamp<std::uint64_t>(P63, c.lo, c.hi);
    default: break;
  }
  const int lo_bits = static_cast<int>(std::bit_width(c.lo)), hi_bits = static_cast<int>(std::bit_width(c.hi));
  const int bits = lo_bits + static_cast<int>(rng() % static_cast<std::uint64_t>(hi_bits - lo_bits + 1));
  std::uint64_t r = bits >= 64 ? rng() : (rng() & ((std::uint64_t{1} << bits) - 1)) | (std::uint64_t{1} << (bits - 1));
  return std::clamp(r, c.lo, c.hi);
}

// S values that fit (S <= smax): uniform over [0, smax], small ones, the top
// edge, and scaled images of host ticks with their neighbours (remainder 0 or
// just past a multiple of the ratio).
std::vector<std::uint64_t> fitting_guests(const tsc_params& p, std::uint64_t smax, std::size_t n,
                                          std::mt19937_64& rng) {
  std::vector<std::uint64_t> s = {0, 1, 2, smax, smax - 1, smax / 2};
  const auto uniform = [&] { return smax == M1 ? rng() : rng() % (smax + 1); };
  while (s.size() < n) {
    switch (rng() % 4) {
      case 0: s.push_back(uniform()); break;
      case 1: s.push_back(uniform() >> (rng() % 64)); break;
      default: {
        const std::uint64_t h = rng() >> (rng() % 64);
        const u128 img = (static_cast<u128>(h) * p.ratio) >> p.frac_bits;
        const std::uint64_t g = img > smax ? uniform() : static_cast<std::uint64_t>(img);
        const std::uint64_t d = rng() % 3;  // g - 1, g, g + 1, kept in range
        s.push_back(d == 0 ? (g == 0 ? g : g - 1) : d == 1 ? g : (g == smax ? g : g + 1));
        break;
      }
    }
  }
  std::shuffle(s.begin(), s.end(), rng);
  s.resize(n);  // n may be below the number of edge values
  for (auto& v : s) v += p.offset;
  return s;
}

// Every kernel copy this CPU runs (the baseline always).
std::vector<tsync::detail::isa> usable_isas() {
  std::vector<tsync::detail::isa> v;
  for (auto i : {tsync::detail::isa::baseline, tsync::detail::isa::avx2, tsync::detail::isa::avx512})
    if (tsync::detail::isa_usable(i)) v.push_back(i);
  return v;
}

}  // namespace

TEST_CASE("every batch inverse kernel copy equals the scalar division on a million values per ratio class") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  constexpr int ratios_per_class = 24;
  constexpr std::size_t values_per_ratio = (std::size_t{1} << 20) / 16;  // 16 x 2^16 random plus edges
  for (const auto& c : classes()) {
    INFO("class " << c.name);
    std::size_t compared = 0;
    for (int k = 0; k < ratios_per_class; ++k) {
      tsc_params p{rng(), random_ratio(c, rng, k), c.frac};
      if (p.is_unscaled()) continue;
      INFO("ratio " << p.ratio << " frac " << int(p.frac_bits) << " offset " << p.offset);
      auto plan = inverse_plan::make(p);
      REQUIRE(plan);
      // Fewer values for the fixed edge ratios, the full amount for random ones.
      const std::size_t n = (k < 4 ? values_per_ratio / 8 : values_per_ratio) + rng() % 8;
      const auto in = fitting_guests(p, plan->max_scaled(), n, rng);
      std::vector<std::uint64_t> want(n);
      for (std::size_t i = 0; i < n; ++i) {
        auto w = to_host(in[i], p);
        REQUIRE(w);
        want[i] = *w;
      }
      const auto& kc = kvm::detail::inverse_access::get(*plan);

      std::vector<std::uint64_t> out(n, 0);
      for (const auto which : usable_isas()) {
        INFO("kernel copy " << tsync::detail::isa_name(which));
        std::fill(out.begin(), out.end(), 0);
        REQUIRE(kvm::detail::to_host_batch(in.data(), out.data(), n, kc, which));
        REQUIRE(out == want);
      }

      std::fill(out.begin(), out.end(), 0);
      REQUIRE(to_host(in, out, *plan));
      REQUIRE(out == want);
      auto inplace = in;
      REQUIRE(to_host(std::span<std::uint64_t>(inplace), p));
      REQUIRE(inplace == want);
      for (std::size_t i = 0; i < n; i += 97) REQUIRE(plan->scaled(in[i] - p.offset) == want[i]);
      compared += n;
    }
    CHECK(compared >= (std::size_t{1} << 20));
  }
}

TEST_CASE("every batch inverse kernel copy reports the first overflow index and the converted prefix") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  int checked = 0;
  for (const auto& c : classes()) {
    INFO("class " << c.name);
    for (int k = 0; k < 40; ++k) {
      tsc_params p{rng(), random_ratio(c, rng, k), c.frac};
      if (p.is_unscaled()) continue;
      auto plan = inverse_plan::make(p);
      REQUIRE(plan);
      const std::uint64_t smax = plan->max_scaled();
      if (smax == M1) continue;  // every S fits: nothing can overflow
      INFO("ratio " << p.ratio << " frac " << int(p.frac_bits) << " offset " << p.offset);
      const std::size_t n = 1 + rng() % 1500;
      auto in = fitting_guests(p, smax, n, rng);
      // One to three overflowing values: S just above the limit, or anywhere above it.
      const std::size_t bads = 1 + rng() % 3;
      for (std::size_t b = 0; b < bads; ++b) {
        const std::uint64_t s = rng() % 2 ? smax + 1 : smax + 1 + rng() % (M1 - smax);
        in[rng() % n] = s + p.offset;
      }
      std::size_t first = n;
      for (std::size_t i = 0; i < n && first == n; ++i)
        if (!to_host(in[i], p)) first = i;
      REQUIRE(first < n);
      const auto& kc = kvm::detail::inverse_access::get(*plan);

      for (const auto which : usable_isas()) {
        INFO("kernel copy " << tsync::detail::isa_name(which));
        std::vector<std::uint64_t> out(n, 0);
        auto r = kvm::detail::to_host_batch(in.data(), out.data(), n, kc, which);
        REQUIRE_FALSE(r);
        CHECK(r.error() == tsync::index_error{errc::overflow, first});
        for (std::size_t i = 0; i < first; ++i) REQUIRE(out[i] == *to_host(in[i], p));
      }

      for (bool in_place : {false, true}) {
        INFO("in place " << in_place);
        auto buf = in;
        std::vector<std::uint64_t> o2(n, 0);
        auto r2 = in_place ? to_host(std::span<std::uint64_t>(buf), p) : to_host(in, o2, *plan);
        const auto& res = in_place ? buf : o2;
        REQUIRE_FALSE(r2);
        CHECK(r2.error().code == errc::overflow);
        CHECK(r2.error().index == first);
        for (std::size_t i = 0; i < first; ++i) REQUIRE(res[i] == *to_host(in[i], p));
      }
      ++checked;
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("the reciprocal estimate is at most two below the ceiling and every correction occurs") {
  // The proof in tsc.hpp: e = S*mi + hi(S*mf) is floor(S*c) or one less, so
  // to_host(S) - e is 0, 1 or 2. The tests above only mean something if the
  // data reach all three cases; this checks both facts on the same kind of data.
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::uint64_t seen[3] = {0, 0, 0};
  for (const auto& c : classes()) {
    for (int k = 0; k < 24; ++k) {
      const tsc_params p{0, random_ratio(c, rng, k), c.frac};
      auto plan = inverse_plan::make(p);
      REQUIRE(plan);
      const auto& kc = kvm::detail::inverse_access::get(*plan);
      for (std::uint64_t s : fitting_guests(p, plan->max_scaled(), 4000, rng)) {
        const std::uint64_t e = s * kc.mi + static_cast<std::uint64_t>((static_cast<u128>(s) * kc.mf) >> 64);
        const std::uint64_t q = *to_host(s, p);
        INFO("ratio " << p.ratio << " frac " << int(p.frac_bits) << " S " << s);
        REQUIRE(q >= e);
        REQUIRE(q - e <= 2);
        ++seen[q - e];
      }
    }
  }
  CHECK(seen[0] > 0);
  CHECK(seen[1] > 0);
  CHECK(seen[2] > 0);
}
