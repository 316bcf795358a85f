// Sync table: validation, de-duplication, interpolation and step rules,
// outside policies, overflow, host→guest, against independent references.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "test_util.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/kvm/tsc.hpp"

using tsync::errc;
using tsync::i128;
using tsync::sync_sample;
using namespace tsync::correct;

namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

tsync_test::raw_table table(std::vector<sync_sample> s, correction_mode m = correction_mode::interpolate,
                 outside_policy p = outside_policy::extrapolate) {
  auto t = sync_table::make(std::move(s), m, p);
  REQUIRE(t.has_value());
  return std::move(*t);
}
sync_sample smp(std::int64_t t, std::int64_t o) { return tsync_test::raw_sample(t, o, 1, 0, std::nullopt); }

// Independent reference for moderate magnitudes: the floor of the exact
// rational, straight from the definition with one 128-bit product.
i128 ref_interp(std::int64_t t0, std::int64_t o0, std::int64_t t1, std::int64_t o1, std::int64_t t) {
  const i128 num = (static_cast<i128>(o1) - o0) * (static_cast<i128>(t) - t0);
  return static_cast<i128>(t) + o0 + tsync::floor_div(num, static_cast<i128>(t1) - t0);
}

}  // namespace

TEST_CASE("An empty table is rejected with empty_input") {
  auto t = sync_table::make({}, correction_mode::interpolate, outside_policy::clamp);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error() == errc::empty_input);
}

TEST_CASE("Unsorted samples are rejected with unsorted_input and the index is reported") {
  std::vector<sync_sample> s{smp(10, 1), smp(20, 2), smp(15, 3)};
  auto t = sync_table::make(s);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error() == errc::unsorted_input);
  auto bad = validate(s, correction_mode::interpolate);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error() == tsync::index_error{errc::unsorted_input, 2});
  sort_samples(s);
  CHECK(sync_table::make(s).has_value());
}

TEST_CASE("validate names the kind and the index of the first bad sample") {
  CHECK(validate(std::span<const sync_sample>{}, correction_mode::step).error() ==
        tsync::index_error{errc::empty_input, 0});
  std::vector<sync_sample> s{smp(0, 0), smp(10, 1), tsync_test::raw_sample(20, 0, 0, 48, std::nullopt)};
  CHECK(validate(s, correction_mode::step).error() == tsync::index_error{errc::zero_ratio, 2});
  s[2] = tsync_test::raw_sample(20, 0, 1, 64, std::nullopt);
  CHECK(validate(s, correction_mode::step).error() == tsync::index_error{errc::bad_frac_bits, 2});
  s[2] = tsync_test::raw_sample(20, 0, 3, 1, std::nullopt);
  CHECK(validate(s, correction_mode::step).has_value());
  CHECK(validate(s, correction_mode::interpolate).error() == tsync::index_error{errc::unsupported, 2});
}

TEST_CASE("A zero ratio and frac_bits above 63 are rejected") {
  std::vector<sync_sample> s{smp(0, 0), tsync_test::raw_sample(10, 0, 0, 48, std::nullopt)};
  auto t = sync_table::make(s, correction_mode::step, outside_policy::clamp);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error() == errc::zero_ratio);
  s[1] = tsync_test::raw_sample(10, 0, 1, 64, std::nullopt);
  auto u = sync_table::make(s, correction_mode::step, outside_policy::clamp);
  REQUIRE_FALSE(u.has_value());
  CHECK(u.error() == errc::bad_frac_bits);
}

TEST_CASE("Bounds that do not contain zero are rejected") {
  std::vector<sync_sample> s{tsync_test::raw_sample(0, 5, 1, 0, tsync::offset_interval{1, 3})};
  auto t = sync_table::make(s);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error() == errc::invalid_argument);
}

TEST_CASE("Interpolate mode rejects scaled samples with unsupported") {
  std::vector<sync_sample> s{tsync_test::raw_sample(0, 5, 3, 1, std::nullopt)};
  auto t = sync_table::make(s, correction_mode::interpolate, outside_policy::clamp);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error() == errc::unsupported);
  CHECK(sync_table::make(s, correction_mode::step, outside_policy::clamp).has_value());
}

TEST_CASE("Equal guest times are de-duplicated keeping the last sample in input order") {
  auto t = table({smp(0, 100), smp(10, 1), smp(10, 2), smp(10, 3), smp(20, 4)});
  REQUIRE(t.size() == 3);
  CHECK(t.samples()[1].offset.count() == 3);
  CHECK(*t.correct(10) == 13);
  auto st = table({smp(5, 7), smp(5, 9)}, correction_mode::step, outside_policy::clamp);
  REQUIRE(st.size() == 1);
  CHECK(*st.correct(100) == 109);
}

TEST_CASE("Interpolation is exact at every sample point") {
  const auto seed = tsync_test::seed_for(1001);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int iter = 0; iter < 200; ++iter) {
    const auto kind = static_cast<tsync_test::table_kind>(iter % 3);
    auto s = tsync_test::random_samples(r, 1 + r.u64() % 50, kind);
    for (auto pol : {outside_policy::extrapolate, outside_policy::clamp, outside_policy::reject}) {
      auto t = table(s, correction_mode::interpolate, pol);
      for (const auto& x : t.samples()) {
        const auto h = t.correct(tsync::raw_ns(x.guest_time));
        const i128 want = static_cast<i128>(tsync::raw_ns(x.guest_time)) + x.offset.count();
        if (auto w = tsync::narrow_i64(want)) {
          REQUIRE(h.has_value());
          CHECK(*h == *w);
        } else {
          REQUIRE_FALSE(h.has_value());
          CHECK(h.error() == errc::overflow);
        }
      }
    }
  }
}

TEST_CASE("Interpolation rounds the offset toward minus infinity") {
  auto up = table({smp(0, 0), smp(3, 1)});
  CHECK(*up.correct(1) == 1);  // 1 + floor(1/3)
  CHECK(*up.correct(2) == 2);  // 2 + floor(2/3)
  auto down = table({smp(0, 0), smp(3, -1)});
  CHECK(*down.correct(1) == 0);  // 1 + floor(-1/3) = 1 - 1
  CHECK(*down.correct(2) == 1);  // 2 + floor(-2/3)
  CHECK(*down.offset_at(1) == -1);
}

TEST_CASE("Interpolation matches an independent 128-bit reference on random tables") {
  const auto seed = tsync_test::seed_for(1002);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int iter = 0; iter < 300; ++iter) {
    auto s = tsync_test::random_samples(r, 2 + r.u64() % 20, iter % 2 ? tsync_test::table_kind::wide
                                                                       : tsync_test::table_kind::realistic);
    auto t = table(s);
    for (int k = 0; k < 200; ++k) {
      const std::size_t i = r.u64() % (s.size() - 1);
      const std::int64_t ev = r.range(tsync::raw_ns(s[i].guest_time), tsync::raw_ns(s[i + 1].guest_time) - 1);
      const i128 want = ref_interp(tsync::raw_ns(s[i].guest_time), s[i].offset.count(), tsync::raw_ns(s[i + 1].guest_time), s[i + 1].offset.count(), ev);
      const auto h = t.correct(ev);
      REQUIRE(h.has_value());
      REQUIRE(*h == static_cast<std::int64_t>(want));
      // and within one unit of the exact rational value: 0 <= exact - result < 1
    }
  }
}

TEST_CASE("Extrapolation continues the nearest segment and clamp holds the nearest offset") {
  const std::vector<sync_sample> s{smp(100, 10), smp(200, 20), smp(300, 40)};
  auto ex = table(s, correction_mode::interpolate, outside_policy::extrapolate);
  CHECK(*ex.correct(0) == 0 + 0);        // segment 0 line: offset 10 + (0-100)*10/100 = 0
  CHECK(*ex.correct(50) == 50 + 5);
  CHECK(*ex.correct(400) == 400 + 60);   // segment 1 line: 20 + 200*20/100
  CHECK(*ex.correct(301) == 301 + 40);   // 20 + floor(201*20/100) = 20 + 40
  auto cl = table(s, correction_mode::interpolate, outside_policy::clamp);
  CHECK(*cl.correct(0) == 10);
  CHECK(*cl.correct(99) == 109);
  CHECK(*cl.correct(400) == 440);
  auto rj = table(s, correction_mode::interpolate, outside_policy::reject);
  CHECK(rj.correct(99).error() == errc::out_of_range);
  CHECK(rj.correct(301).error() == errc::out_of_range);
  CHECK(*rj.correct(100) == 110);
  CHECK(*rj.correct(300) == 340);
}

TEST_CASE("A host time outside int64 is an overflow error and not a wrapped value") {
  auto t = table({smp(kMax - 10, 5), smp(kMax, 20)});
  CHECK(t.correct(kMax - 10).value() == kMax - 5);
  CHECK(t.correct(kMax - 6).error() == errc::overflow);
  CHECK(t.correct(kMax).error() == errc::overflow);
  auto c = table({smp(0, kMin)}, correction_mode::interpolate, outside_policy::clamp);
  CHECK(c.correct(-1).error() == errc::overflow);
  CHECK(*c.correct(0) == kMin);
  // an extrapolation that leaves int64
  auto e = table({smp(0, 0), smp(1, 1'000'000)});
  CHECK(e.correct(kMax / 2).error() == errc::overflow);
  CHECK(e.correct(kMin / 2).error() == errc::overflow);
}

TEST_CASE("No overflow on a 10 hour trace with 100 ppm drift in nanoseconds and in 3 GHz ticks") {
  const auto seed = tsync_test::seed_for(1003);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (const std::int64_t units_per_s : {std::int64_t{1'000'000'000}, std::int64_t{3'000'000'000}}) {
    const std::int64_t duration = 36'000 * units_per_s;  // 10 h
    const std::int64_t drift = duration / 10'000;        // 100 ppm over the trace
    const std::int64_t t0 = 5 * units_per_s;
    const std::int64_t o0 = -123'456'789'012;
    auto t = table({smp(t0, o0), smp(t0 + duration, o0 + drift)});
    // trace-cmd's 64-bit product (ts - t0) * (o1 - o0) exceeds int64 here.
    REQUIRE(static_cast<i128>(duration) * drift > static_cast<i128>(kMax));
    for (int k = 0; k < 2000; ++k) {
      const std::int64_t ev = t0 + r.range(0, duration);
      const i128 want = ref_interp(t0, o0, t0 + duration, o0 + drift, ev);
      REQUIRE(*t.correct(ev) == static_cast<std::int64_t>(want));
    }
    const std::int64_t three_q = t0 + duration / 4 * 3;
    CHECK(*t.correct(three_q) == three_q + o0 + drift / 4 * 3);
  }
}

TEST_CASE("Step mode applies the sample with the greatest time at or before the event") {
  auto t = table({smp(100, 1000), smp(200, 2000), smp(300, 5000)}, correction_mode::step, outside_policy::clamp);
  CHECK(*t.correct(100) == 1100);
  CHECK(*t.correct(199) == 1199);
  CHECK(*t.correct(200) == 2200);
  CHECK(*t.correct(299) == 2299);
  CHECK(*t.correct(50) == 1050);  // before the first sample: the first one holds
}

TEST_CASE("Step mode event after the last sample uses the last sample unlike trace-cmd") {
  // trace-cmd corrects ts >= last with sample n-2 and returns 1350 here.
  auto t = table({smp(100, 1000), smp(200, 1000), smp(300, 5000)}, correction_mode::step, outside_policy::clamp);
  CHECK(*t.correct(350) == 5350);
  auto e = table({smp(100, 1000), smp(200, 1000), smp(300, 5000)}, correction_mode::step,
                 outside_policy::extrapolate);
  CHECK(*e.correct(350) == 5350);
  auto rj = table({smp(100, 1000), smp(200, 1000), smp(300, 5000)}, correction_mode::step, outside_policy::reject);
  CHECK(rj.correct(350).error() == errc::out_of_range);
  CHECK(*rj.correct(300) == 5300);
}

TEST_CASE("Step mode two-sample table applies the offset change seen by the second sample") {
  // trace-cmd with two samples always uses sample 0.
  auto t = table({smp(0, 10), smp(100, 20)}, correction_mode::step, outside_policy::clamp);
  CHECK(*t.correct(50) == 60);
  CHECK(*t.correct(100) == 120);
  CHECK(*t.correct(1000) == 1020);
}

TEST_CASE("Step mode one sample with scaling applies the exact KVM inverse") {
  // trace-cmd's single-sample path returns ts + offset and ignores the scaling.
  const std::uint64_t ratio = 187650047023786ULL;  // Intel, 2.0 GHz guest on a 2.999999 GHz host
  const std::int64_t kvm_offset = -1'000'000'000'000;
  auto t = table({tsync_test::raw_sample(0, -kvm_offset, ratio, 48, std::nullopt)}, correction_mode::step,
                 outside_policy::clamp);
  const tsync::kvm::tsc_params p{static_cast<std::uint64_t>(kvm_offset), ratio, 48};
  for (std::uint64_t h : {1'000'000'000'000ULL, 27951088470225859ULL, 5'000'000'000'123ULL}) {
    const std::uint64_t g = tsync::kvm::to_guest(h, p);
    const auto back = t.correct(static_cast<std::int64_t>(g));
    REQUIRE(back.has_value());
    CHECK(*back == static_cast<std::int64_t>(*tsync::kvm::to_host(g, p)));
    CHECK(static_cast<std::uint64_t>(*back) <= h);  // never after the true host time
    CHECK(h - static_cast<std::uint64_t>(*back) <= tsync::kvm::inverse_error_bound(p));
    CHECK(*back != static_cast<std::int64_t>(g) + (-kvm_offset));  // scaling matters
  }
}

TEST_CASE("Step mode equals kvm to_host on random scaled parameters") {
  const auto seed = tsync_test::seed_for(1004);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int iter = 0; iter < 2000; ++iter) {
    const std::uint8_t frac = r.coin(2) ? 48 : 32;
    const std::uint64_t ratio = (std::uint64_t{1} << frac) / 4 + r.u64() % ((std::uint64_t{1} << frac) * 3);
    const std::int64_t off = r.range(-(std::int64_t{1} << 50), std::int64_t{1} << 50);
    auto t = table({tsync_test::raw_sample(0, off, ratio, frac, std::nullopt)}, correction_mode::step, outside_policy::clamp);
    const tsync::kvm::tsc_params p{0u - static_cast<std::uint64_t>(off), ratio, frac};
    const std::int64_t g = r.range(std::max<std::int64_t>(0, -off), std::int64_t{1} << 55);
    const auto want = tsync::kvm::to_host(static_cast<std::uint64_t>(g), p);
    REQUIRE(want.has_value());
    const auto got = t.correct(g);
    REQUIRE(got.has_value());
    CHECK(static_cast<std::uint64_t>(*got) == *want);
  }
}

TEST_CASE("Host to guest is the Galois inverse of a monotone interpolated map") {
  const auto seed = tsync_test::seed_for(1005);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  int checked = 0;
  for (int iter = 0; iter < 300; ++iter) {
    auto s = tsync_test::random_samples(r, 1 + r.u64() % 12, tsync_test::table_kind::realistic);
    const auto pol = static_cast<outside_policy>(iter % 3);
    auto t = table(s, correction_mode::interpolate, pol);
    REQUIRE(t.invertible());
    const std::int64_t lo = tsync::raw_ns(s.front().guest_time) - 20'000'000'000;
    const std::int64_t hi = tsync::raw_ns(s.back().guest_time) + 20'000'000'000;
    for (int k = 0; k < 100; ++k) {
      const auto c = t.correct(r.range(lo, hi));
      if (!c) continue;  // outside the sampled range under reject
      const std::int64_t h = *c + r.range(-3, 3);
      const auto g = t.to_guest(h);
      if (!g) {
        REQUIRE(pol == outside_policy::reject);
        CHECK(g.error() == errc::out_of_range);
        continue;
      }
      const auto hg = t.correct(*g);
      REQUIRE(hg.has_value());
      CHECK(*hg >= h);  // maps at or after h
      if (*g > tsync::raw_ns(s.front().guest_time) || (pol != outside_policy::reject && *g > kMin)) {
        const auto before = t.correct(*g - 1);
        if (before) CHECK(*before < h);  // and is the first guest time that does
      }
      ++checked;
    }
    // round trip of a genuine guest time: to_guest(correct(g)) <= g and maps to the same host time
    const std::int64_t g0 = r.range(tsync::raw_ns(s.front().guest_time), tsync::raw_ns(s.back().guest_time));
    const auto h0 = t.correct(g0);
    const auto g1 = t.to_guest(*h0);
    REQUIRE(g1.has_value());
    CHECK(*g1 <= g0);
    CHECK(*t.correct(*g1) == *h0);
  }
  CHECK(checked > 10000);
}

TEST_CASE("Host to guest reports ambiguous when the map goes backward") {
  auto t = table({smp(0, 0), smp(100, -200), smp(200, -200)});
  CHECK_FALSE(t.invertible());
  CHECK(t.to_guest(50).error() == errc::ambiguous);
}

TEST_CASE("Host to guest in step mode applies the offset in force at that host time") {
  auto t = table({smp(100, 1000), smp(200, 2000), smp(300, 5000)}, correction_mode::step, outside_policy::clamp);
  REQUIRE(t.invertible());
  CHECK(*t.to_guest(1150) == 150);
  CHECK(*t.to_guest(2250) == 250);
  CHECK(*t.to_guest(6000) == 1000);
  CHECK(*t.to_guest(500) == -500);
  // scaled: guest at 2/3 of the host rate, round trip exact (ratio <= 2^frac)
  const std::uint64_t ratio = (std::uint64_t{2} << 32) / 3;
  auto s = table({tsync_test::raw_sample(0, 7777, ratio, 32, std::nullopt), tsync_test::raw_sample(1'000'000, 9999, ratio, 32, std::nullopt)},
                 correction_mode::step, outside_policy::clamp);
  for (std::int64_t g : {std::int64_t{0}, std::int64_t{1}, std::int64_t{999'999}, std::int64_t{1'000'000},
                         std::int64_t{123'456'789}}) {
    CHECK(*s.to_guest(*s.correct(g)) == g);
  }
}

TEST_CASE("Bounds are reported from the bracketing samples") {
  auto t = table({tsync_test::raw_sample(0, 0, 1, 0, tsync::offset_interval{-5, 3}),
                  tsync_test::raw_sample(10, 0, 1, 0, tsync::offset_interval{-2, 8})});
  auto b = t.bounds_at(5);
  REQUIRE(b.has_value());
  CHECK(b->lo == -5);
  CHECK(b->hi == 8);
  CHECK(t.bounds_at(20)->hi == 8);
}
