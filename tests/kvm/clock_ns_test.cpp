// TSC <-> ns: perf mmap-page formula, cyc2ns derivation, kvmclock.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

#include "tsync/kvm.hpp"

using namespace tsync;
using namespace tsync::kvm;

namespace {

// The code of a validation: errc::ok when valid.
[[maybe_unused]] errc code_of(const expected<void, errc>& v) { return v ? errc::ok : v.error(); }
std::uint64_t make_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}
// perf's documented quot/rem form of cycles -> ns (uapi perf_event.h).
std::uint64_t perf_quot_rem(std::uint64_t cyc, std::uint32_t mult, unsigned shift, std::uint64_t zero) {
  const std::uint64_t quot = cyc >> shift;
  const std::uint64_t rem = cyc & ((std::uint64_t{1} << shift) - 1);
  return zero + quot * mult + ((rem * mult) >> shift);
}
}  // namespace

TEST_CASE("T16 cyc2ns for a 2999999 kHz TSC and ns of the sample host tick") {
  auto ms = cyc2ns_from_khz(2999999);
  REQUIRE(ms);
  CHECK(ms->mult == 715828121u);
  CHECK(ms->shift == 31u);
  CHECK(tsc_to_ns(27951088470225859ULL, perf_params(*ms)) == 9317032592159947ULL);
}

TEST_CASE("T17 ns to cycles with the ceiling round-trips where perf's floor is one ns early") {
  const perf_time_params p{static_cast<std::uint64_t>(-5123456789LL), 715828121u, 31};
  const std::uint64_t c = 27951088470225859ULL;
  const std::uint64_t t = tsc_to_ns(c, p);
  CHECK(t == 9317027468703158ULL);
  auto fl = ns_to_tsc_floor(t, p);
  REQUIRE(fl);
  CHECK(*fl == 27951088470225856ULL);
  CHECK(tsc_to_ns(*fl, p) == 9317027468703157ULL);
  auto ce = ns_to_tsc_ceil(t, p);
  REQUIRE(ce);
  CHECK(*ce == 27951088470225857ULL);
  CHECK(tsc_to_ns(*ce, p) == t);
}

TEST_CASE("T18 an 800 MHz TSC has a multiplier above 2^31 that must stay unsigned") {
  auto ms = cyc2ns_from_khz(800000);
  REQUIRE(ms);
  CHECK(ms->mult == 2684354560u);
  CHECK(ms->shift == 31u);
  const std::uint64_t c = 27951088470225859ULL;
  CHECK(tsc_to_ns(c, perf_params(*ms)) == 34938860587782323ULL);
  // trace-cmd's sign-extended multiplier gives garbage (reproduced here for contrast).
  const std::uint64_t mi = static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int32_t>(ms->mult)));
  const std::uint64_t al = c & 0xffffffffu, ah = c >> 32;
  const std::uint64_t tc = ((al * mi) >> 31) + ((ah * mi) << 1);
  CHECK(tc == 18425780765946816813ULL);
  // 1 GHz: 2^31 / 31.
  CHECK(*cyc2ns_from_khz(1000000) == mult_shift{2147483648u, 31});
  CHECK(cyc2ns_from_khz(0).error() == errc::invalid_argument);
}

TEST_CASE("clocks_calc_mult_shift honours maxsec and rejects a zero source frequency") {
  // A 1 MHz clock to ns with 600 s of range: shift reduced so that 600e6 ticks * mult fits.
  auto ms = clocks_calc_mult_shift(1000000, 1000000000, 600);
  REQUIRE(ms);
  const u128 prod = static_cast<u128>(600000000ULL) * ms->mult;
  CHECK((prod >> 64) == 0);
  CHECK(ms->mult == (static_cast<std::uint64_t>(1000000000) << ms->shift) / 1000000);
  CHECK(clocks_calc_mult_shift(0, 1, 0).error() == errc::invalid_argument);
}

TEST_CASE("perf time parameters are validated") {
  CHECK(code_of(validate(perf_time_params{0, 0, 10})) == errc::invalid_argument);
  CHECK(code_of(validate(perf_time_params{0, 1, 64})) == errc::invalid_argument);
  CHECK(code_of(validate(perf_time_params{0, 1, 63})) == errc::ok);
  CHECK(ns_to_tsc_ceil(5, perf_time_params{0, 0, 10}).error() == errc::invalid_argument);
  // ns far beyond what 64-bit cycles can reach.
  CHECK(ns_to_tsc_ceil(~std::uint64_t{0}, perf_time_params{0, 1, 31}).error() == errc::overflow);
}

TEST_CASE("short counters are extended with time_cycles and time_mask") {
  perf_time_params p{1000, 1u << 31, 31, 0x12345678ff00ULL, 0xffffffULL};  // 24-bit counter, 1 ns per cycle
  // A raw 24-bit value just after the last full value wraps forward.
  const std::uint64_t raw = 0x10;  // low 24 bits after a wrap of 0x78ff00
  const std::uint64_t full = extend_cycles(raw, p);
  CHECK(full == 0x12345678ff00ULL + ((raw - 0x12345678ff00ULL) & 0xffffffULL));
  CHECK((full & 0xffffffULL) == raw);
  CHECK(full > 0x12345678ff00ULL);
  CHECK(tsc_to_ns(raw, p) == 1000 + full);
  auto back = ns_to_tsc_ceil(1000 + full, p);
  REQUIRE(back);
  CHECK(*back == full);
  CHECK((*back & p.time_mask) == raw);
}

TEST_CASE("tsc_to_ns equals perf's quot and rem form on random full-range inputs") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200000; ++i) {
    const std::uint32_t m = static_cast<std::uint32_t>(rng()) | 1u;
    // perf's quot/rem form is exact only while rem * mult fits 64 bits (shift <= 32).
    const unsigned s = static_cast<unsigned>(rng() % 33);
    const std::uint64_t z = rng(), c = rng();
    const perf_time_params p{z, m, static_cast<std::uint16_t>(s)};
    REQUIRE(tsc_to_ns(c, p) == perf_quot_rem(c, m, s, z));
  }
}

TEST_CASE("ns and cycles round-trip with the ceiling inverse within the documented bound") {
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200000; ++i) {
    // Realistic TSCs from 100 MHz to 6 GHz, through the kernel derivation.
    const std::uint32_t khz = 100000u + static_cast<std::uint32_t>(rng() % 5900000u);
    auto ms = cyc2ns_from_khz(khz);
    REQUIRE(ms);
    const perf_time_params p = perf_params(*ms, rng());
    // Cycles whose ns count (before time_zero) fits 64 bits: at most 10 ns per cycle here.
    const std::uint64_t c = rng() >> (4 + rng() % 8);
    INFO("khz " << khz << " c " << c);
    // Cycles -> ns -> cycles loses at most ceil(2^s/m) - 1 cycles.
    const std::uint64_t t = tsc_to_ns(c, p);
    auto c2 = ns_to_tsc_ceil(t, p);
    REQUIRE(c2);
    REQUIRE(*c2 <= c);
    REQUIRE(c - *c2 <= ns_round_trip_bound(p));
    REQUIRE(tsc_to_ns(*c2, p) == t);
    // Any ns value that the forward map produces comes back exactly; for TSCs
    // faster than 1 GHz the map is onto, so any ns in range does.
    if (ms->mult < (1u << ms->shift)) {
      const std::uint64_t t2 = p.time_zero + (rng() >> 4);
      auto c3 = ns_to_tsc_ceil(t2, p);
      REQUIRE(c3);
      REQUIRE(tsc_to_ns(*c3, p) == t2);
    }
  }
}

TEST_CASE("T19 kvmclock scale for 2999999 kHz and 1999999 kHz guests") {
  auto a = kvmclock_scale_from_khz(2999999);
  REQUIRE(a);
  CHECK(a->tsc_to_system_mul == 2863312485u);
  CHECK(a->tsc_shift == -1);
  auto b = kvmclock_scale_from_khz(1999999);
  REQUIRE(b);
  CHECK(b->tsc_to_system_mul == 2147484721u);
  CHECK(b->tsc_shift == 0);
  const pvclock_time t{1000, 123456789, *b};
  CHECK(kvmclock_ns(1000 + 2000000000ULL, t) == 1123457288ULL);
  // T20 chain: the kvmclock of a 2/3 guest is computed for the floored 1999999 kHz.
  CHECK(*kvmclock_scale_from_khz(scale_tsc(2999999, 187650047023786ULL, 48)) == *b);
}

TEST_CASE("kvm_get_time_scale keeps the multiplier in 0.32 fixed point for any frequency") {
  CHECK(kvm_get_time_scale(0, 5).error() == errc::invalid_argument);
  CHECK(kvm_get_time_scale(5, 0).error() == errc::invalid_argument);
  CHECK(kvmclock_scale_from_khz(0).error() == errc::invalid_argument);
  const std::uint64_t seed = make_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t khz = 1 + rng() % 10000000u;
    auto s = kvmclock_scale_from_khz(khz);
    REQUIRE(s);
    // ns for one second of ticks is within a few ns of 1e9.
    const std::uint64_t ns = pvclock_scale_delta(khz * 1000u, *s);
    INFO("khz " << khz << " mul " << s->tsc_to_system_mul << " shift " << int(s->tsc_shift));
    REQUIRE(ns <= 1000000000u);
    REQUIRE(ns >= 1000000000u - 4000u);
  }
}

TEST_CASE("pvclock_scale_delta shifts before multiplying and never shifts by 64 or more") {
  CHECK(pvclock_scale_delta(1000, pvclock_scale{1u << 31, 1}) == 1000u);   // x2 then x0.5
  CHECK(pvclock_scale_delta(1000, pvclock_scale{1u << 31, -1}) == 250u);   // /2 then x0.5
  CHECK(pvclock_scale_delta(1000, pvclock_scale{1u << 31, 100}) == 0u);
  CHECK(pvclock_scale_delta(1000, pvclock_scale{1u << 31, -128}) == 0u);
}
