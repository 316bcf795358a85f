// Batch TSC <-> ns (perf's page formula): every kernel copy the CPU runs,
// bit for bit against the scalar tsc_to_ns / ns_to_tsc_ceil on random and
// edge values, shifts 0..63, short counters, overflow and in-place use.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "tsync/kvm.hpp"

using namespace tsync;
using namespace tsync::kvm;

namespace {

constexpr std::uint64_t M1 = ~std::uint64_t{0};

std::uint64_t make_seed() {
  if (const char* env = std::getenv("TSYNC_TEST_SEED")) return std::strtoull(env, nullptr, 10);
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::vector<tsync::detail::isa> usable_isas() {
  std::vector<tsync::detail::isa> v;
  for (auto i : {tsync::detail::isa::baseline, tsync::detail::isa::avx2, tsync::detail::isa::avx512})
    if (tsync::detail::isa_usable(i)) v.push_back(i);
  return v;
}

// Random values with the edges mixed in: 0, all ones, around 2^32 and 2^63,
// around the shift's carry boundary, and small values.
std::vector<std::uint64_t> values(std::mt19937_64& rng, std::size_t n, unsigned shift) {
  std::vector<std::uint64_t> v(n);
  const std::uint64_t edges[] = {0, 1, M1, M1 - 1, std::uint64_t{1} << 32, (std::uint64_t{1} << 32) - 1,
                                 std::uint64_t{1} << 63, (std::uint64_t{1} << 63) - 1,
                                 (std::uint64_t{1} << shift) - 1, std::uint64_t{1} << shift};
  for (std::size_t i = 0; i < n; ++i) {
    switch (rng() % 4) {
      case 0: v[i] = edges[rng() % std::size(edges)] + (rng() % 3) - 1; break;
      case 1: v[i] = rng() >> (rng() % 64); break;
      default: v[i] = rng(); break;
    }
  }
  return v;
}

perf_time_params random_params(std::mt19937_64& rng, unsigned shift) {
  perf_time_params p;
  p.time_shift = static_cast<std::uint16_t>(shift);
  switch (rng() % 4) {
    case 0: p.time_mult = static_cast<std::uint32_t>(M1 >> 32); break;
    case 1: p.time_mult = 1u + static_cast<std::uint32_t>(rng() % 4); break;
    default: p.time_mult = static_cast<std::uint32_t>(rng() | 1u); break;
  }
  p.time_zero = rng() % 2 ? rng() : 0;
  if (rng() % 4 == 0) {  // a short counter
    const unsigned bits = 32 + static_cast<unsigned>(rng() % 32);
    p.time_mask = (std::uint64_t{1} << bits) - 1;
    p.time_cycles = rng();
  }
  return p;
}

}  // namespace

TEST_CASE("batch tsc_to_ns equals the scalar tsc_to_ns on every kernel copy, every shift") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::size_t compared = 0;
  for (unsigned shift = 0; shift <= 63; ++shift) {
    for (int round = 0; round < 4; ++round) {
      const perf_time_params p = random_params(rng, shift);
      INFO("mult " << p.time_mult << " shift " << shift << " zero " << p.time_zero << " mask " << p.time_mask);
      const std::size_t n = 4096 + rng() % 16;  // tails of every length
      const auto in = values(rng, n, shift);
      std::vector<std::uint64_t> want(n);
      for (std::size_t i = 0; i < n; ++i) want[i] = tsc_to_ns(in[i], p);
      for (const auto which : usable_isas()) {
        INFO("kernel copy " << tsync::detail::isa_name(which));
        std::vector<std::uint64_t> out(n, 0);
        kvm::detail::tsc_to_ns_batch(in.data(), out.data(), n, p, which);
        REQUIRE(out == want);
      }
      std::vector<std::uint64_t> out(n, 0);
      REQUIRE(tsc_to_ns(in, out, p));
      REQUIRE(out == want);
      auto inplace = in;
      REQUIRE(tsc_to_ns(std::span<const std::uint64_t>(inplace), std::span<std::uint64_t>(inplace), p));
      REQUIRE(inplace == want);
      compared += n;
    }
  }
  CHECK(compared >= 64 * 4 * 4096);
}

TEST_CASE("batch ns_to_tsc_ceil equals the scalar ns_to_tsc_ceil, overflow index included") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  int with_overflow = 0;
  for (unsigned shift = 0; shift <= 63; ++shift) {
    for (int round = 0; round < 4; ++round) {
      perf_time_params p = random_params(rng, shift);
      p.time_mask = M1;  // the inverse gives full-width counts
      p.time_cycles = 0;
      INFO("mult " << p.time_mult << " shift " << shift << " zero " << p.time_zero);
      const std::size_t n = 2048 + rng() % 16;
      // Mostly images of the forward map (what real traces hold), plus raw values.
      auto in = values(rng, n, shift);
      for (std::size_t i = 0; i < n; i += 2) in[i] = tsc_to_ns(in[i] >> (rng() % 64), p);
      std::size_t first = n;
      std::vector<std::uint64_t> want(n, 0);
      for (std::size_t i = 0; i < n; ++i) {
        const auto w = ns_to_tsc_ceil(in[i], p);
        if (!w) {
          REQUIRE(w.error() == errc::overflow);
          first = i;
          break;
        }
        want[i] = *w;
      }
      for (const auto which : usable_isas()) {
        INFO("kernel copy " << tsync::detail::isa_name(which));
        auto plan = kvm::detail::ns_to_tsc_plan(p);
        REQUIRE(plan);
        std::vector<std::uint64_t> out(n, 0);
        const auto r = kvm::detail::to_host_batch(in.data(), out.data(), n, kvm::detail::inverse_access::get(*plan),
                                                  which);
        if (first == n) {
          REQUIRE(r);
          REQUIRE(out == want);
        } else {
          REQUIRE_FALSE(r);
          CHECK(r.error() == tsync::index_error{errc::overflow, first});
          for (std::size_t i = 0; i < first; ++i) REQUIRE(out[i] == want[i]);
        }
      }
      auto inplace = in;
      const auto r = ns_to_tsc_ceil(std::span<const std::uint64_t>(inplace), std::span<std::uint64_t>(inplace), p);
      REQUIRE(static_cast<bool>(r) == (first == n));
      for (std::size_t i = 0; i < first; ++i) REQUIRE(inplace[i] == want[i]);
      with_overflow += first != n;
    }
  }
  CHECK(with_overflow > 0);
}

TEST_CASE("batch TSC <-> ns rejects bad parameters and mismatched sizes at index 0") {
  std::vector<std::uint64_t> in(4, 1), out(4), shorter(3);
  const perf_time_params bad_mult{0, 0, 10};
  const perf_time_params bad_shift{0, 5, 64};
  const perf_time_params good{0, 5, 10};
  for (const auto& p : {bad_mult, bad_shift}) {
    auto a = tsc_to_ns(in, out, p);
    REQUIRE_FALSE(a);
    CHECK(a.error() == tsync::index_error{errc::invalid_argument, 0});
    auto b = ns_to_tsc_ceil(in, out, p);
    REQUIRE_FALSE(b);
    CHECK(b.error() == tsync::index_error{errc::invalid_argument, 0});
  }
  auto c = tsc_to_ns(in, shorter, good);
  REQUIRE_FALSE(c);
  CHECK(c.error() == tsync::index_error{errc::invalid_argument, 0});
  auto d = ns_to_tsc_ceil(in, shorter, good);
  REQUIRE_FALSE(d);
  CHECK(d.error() == tsync::index_error{errc::invalid_argument, 0});
}
