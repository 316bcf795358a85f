// The three ways to correct (binary search, streaming cursor, batch) agree bit
// for bit, errors included, on random tables and event streams.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <limits>
#include <vector>

#include "test_util.hpp"
#include "tsync/correct/batch.hpp"
#include "tsync/correct/cursor.hpp"
#include "tsync/correct/exact.hpp"
#include "tsync/correct/sync_table.hpp"

using tsync::errc;
using tsync::i128;
using tsync::sync_sample;
using namespace tsync::correct;

namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

struct outcome {
  bool ok;
  std::int64_t v;
  errc e;
  bool operator==(const outcome&) const = default;
};
outcome of(const tsync::expected<std::int64_t, errc>& x) {
  return x ? outcome{true, *x, errc::ok} : outcome{false, 0, x.error()};
}

// A batch result as (first error, written prefix): errc::ok and n on success.
struct batch_outcome {
  errc error;
  std::size_t index;
  [[nodiscard]] bool ok() const { return error == errc::ok; }
};
batch_outcome batch_of(const tsync::expected<void, tsync::index_error>& r, std::size_t n) {
  return r ? batch_outcome{errc::ok, n} : batch_outcome{r.error().code, r.error().index};
}

// Check all three ways on one table and stream.
void check_agree(const sync_table& t, const std::vector<std::int64_t>& ev) {
  std::vector<outcome> ref;
  ref.reserve(ev.size());
  for (auto g : ev) ref.push_back(of(tsync_test::raw_correct(t, g)));
  cursor c(t);
  for (std::size_t i = 0; i < ev.size(); ++i) {
    const outcome got = of(c.correct(ev[i]));
    if (!(got == ref[i])) {
      INFO("event " << i << " t=" << ev[i] << " ref ok=" << ref[i].ok << " v=" << ref[i].v << " cursor ok=" << got.ok
                    << " v=" << got.v);
      REQUIRE(got == ref[i]);
    }
  }
  // Batch stops at the first error; check its prefix and the error, then resume after it.
  std::vector<std::int64_t> out(ev.size(), 0);
  std::vector<std::int64_t> inplace = ev;
  std::size_t start = 0;
  while (start < ev.size()) {
    const std::span<const std::int64_t> in(ev.data() + start, ev.size() - start);
    const auto st = batch_of(correct_batch(t, in, std::span<std::int64_t>(out.data() + start, ev.size() - start)), in.size());
    const auto st2 = batch_of(correct_batch(t, std::span<std::int64_t>(inplace.data() + start, ev.size() - start)), in.size());
    REQUIRE(st.error == st2.error);
    REQUIRE(st.index == st2.index);
    for (std::size_t i = start; i < start + st.index; ++i) {
      REQUIRE(ref[i].ok);
      REQUIRE(out[i] == ref[i].v);
      REQUIRE(inplace[i] == ref[i].v);
    }
    if (st.ok()) break;
    const std::size_t bad = start + st.index;
    REQUIRE_FALSE(ref[bad].ok);
    REQUIRE(st.error == ref[bad].e);
    inplace[bad] = ev[bad];
    start = bad + 1;
  }
  // Every block-kernel copy the CPU runs (AVX-512, AVX2, baseline) on the same
  // events: the same prefix and the same first error as the reference.
  for (auto which : {tsync::detail::isa::baseline, tsync::detail::isa::avx2, tsync::detail::isa::avx512}) {
    if (!tsync::detail::isa_usable(which)) continue;
    INFO("kernel copy " << tsync::detail::isa_name(which));
    std::vector<std::int64_t> o(ev.size(), 0);
    const auto st = batch_of(tsync::correct::detail::run_batch<false>(t, ev.data(), o.data(), ev.size(), which), ev.size());
    std::size_t first_bad = ev.size();
    for (std::size_t i = 0; i < ev.size() && first_bad == ev.size(); ++i)
      if (!ref[i].ok) first_bad = i;
    REQUIRE(st.index == first_bad);
    if (first_bad < ev.size()) REQUIRE(st.error == ref[first_bad].e);
    for (std::size_t i = 0; i < first_bad; ++i)
      if (o[i] != ref[i].v) {
        INFO("event " << i << " t=" << ev[i]);
        REQUIRE(o[i] == ref[i].v);
      }
  }
}

// Smallest x >= 0 with (r * x) mod len == len - gcd(r, len) (the largest remainder).
std::uint64_t worst_point(std::uint64_t r, std::uint64_t len) {
  const std::uint64_t g = std::gcd(r, len);
  const i128 m = static_cast<i128>(len / g);
  const i128 a = static_cast<i128>(r / g) % m;
  if (m == 1) return 0;
  // inverse of a modulo m (extended Euclid)
  i128 t0 = 0, t1 = 1, r0 = m, r1 = a;
  while (r1 != 0) {
    const i128 qq = r0 / r1;
    const i128 t2 = t0 - qq * t1;
    t0 = t1;
    t1 = t2;
    const i128 r2 = r0 - qq * r1;
    r0 = r1;
    r1 = r2;
  }
  const i128 inv = ((t0 % m) + m) % m;
  // (r/g) * x == m - 1 (mod m)  =>  r * x == len - g (mod len)
  const tsync::u128 x = (static_cast<tsync::u128>(m - 1) * static_cast<tsync::u128>(inv)) % static_cast<tsync::u128>(m);
  return static_cast<std::uint64_t>(x);
}

}  // namespace

TEST_CASE("The portable high product equals the 128-bit high product") {
  const auto seed = tsync_test::seed_for(2001);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t a = r.u64() >> (r.u64() % 64);
    const std::uint64_t b = r.u64() >> (r.u64() % 64);
    REQUIRE(mulhi_u64_portable(a, b) == mulhi_u64(a, b));
  }
  CHECK(mulhi_u64_portable(~0ULL, ~0ULL) == ~0ULL - 1);
}

TEST_CASE("floor_muldiv equals the floor of the exact rational value") {
  const auto seed = tsync_test::seed_for(2002);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int i = 0; i < 100000; ++i) {
    const i128 a = static_cast<i128>(r.i64() >> (r.u64() % 63));
    const i128 b = static_cast<i128>(r.i64() >> (r.u64() % 63));
    const std::uint64_t c = 1 + (r.u64() >> (r.u64() % 64));
    const auto f = floor_muldiv(a, b, c);
    REQUIRE(f.has_value());
    // a*b fits i128 here, so the definition can be used directly
    const i128 want = tsync::floor_div(a * b, static_cast<i128>(c));
    REQUIRE(*f == want);
    REQUIRE(*ceil_muldiv(a, b, c) == tsync::ceil_div(a * b, static_cast<i128>(c)));
  }
  // beyond the range of a direct 128-bit product
  const i128 big = static_cast<i128>(1) << 100;
  CHECK(*floor_muldiv(big, (static_cast<i128>(1) << 64) - 1, (~0ULL)) == big);
  CHECK_FALSE(floor_muldiv(big, big, 1).has_value());
  CHECK_FALSE(floor_muldiv(1, 1, 0).has_value());
}

TEST_CASE("The region kernel is exact for extreme segment lengths slopes and distances") {
  const auto seed = tsync_test::seed_for(2003);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int i = 0; i < 2000; ++i) {
    // a segment of length up to 2^63 with any rise, sampled at x in [0, len)
    const std::uint64_t len = 1 + (r.u64() >> (1 + r.u64() % 63));
    const std::int64_t t0 = r.range(kMin, kMax - static_cast<std::int64_t>(len - 1 > static_cast<std::uint64_t>(kMax) ? kMax : static_cast<std::int64_t>(len - 1)));
    const i128 t1 = static_cast<i128>(t0) + static_cast<i128>(len);
    if (t1 > kMax) continue;
    const std::int64_t o0 = r.i64() >> (r.u64() % 64);
    const std::int64_t o1 = r.i64() >> (r.u64() % 64);
    auto t = sync_table::make({tsync_test::raw_sample(t0, o0, 1, 0, std::nullopt),
                               tsync_test::raw_sample(static_cast<std::int64_t>(t1), o1, 1, 0, std::nullopt)});
    REQUIRE(t.has_value());
    const region_kernel& k = t->kernel(1);
    // random points, and points where r*x is an exact multiple of the length
    // (the estimate is then most often one below and the correction decides)
    const std::uint64_t step = k.r == 0 ? 1 : len / std::gcd(k.r, len);
    // and points where r*x mod len is as large as it gets (len - gcd), where a
    // rounded-up estimate is most likely to overshoot
    const std::uint64_t worst = k.r == 0 ? 0 : worst_point(k.r % len, len);
    std::vector<std::int64_t> ev;
    for (std::uint64_t j = 0; j < 600; ++j) {
      const std::uint64_t x = j % 3 == 1   ? r.u64() % len
                              : j % 3 == 2 ? static_cast<std::uint64_t>((static_cast<tsync::u128>(worst) + static_cast<tsync::u128>(step) * (j / 3)) % len)
                                           : (step * (j / 3)) % len;
      ev.push_back(static_cast<std::int64_t>(static_cast<i128>(t0) + static_cast<i128>(x)));
    }
    std::sort(ev.begin(), ev.end());
    std::vector<std::int64_t> out(ev.size());
    const auto st = batch_of(correct_batch(*t, ev, out), ev.size());
    for (std::size_t j = 0; j < ev.size(); ++j) {
      const auto ref = tsync_test::raw_correct(*t, ev[j]);
      if (k.contains(ev[j])) {
        REQUIRE(ref.has_value());
        REQUIRE(k.apply(ev[j]) == *ref);
        REQUIRE(k.apply_portable(ev[j]) == *ref);
        if (k.short_form) REQUIRE(k.apply_short(ev[j]) == *ref);
      }
      if (j < st.index) REQUIRE(out[j] == *ref);
    }
  }
}

TEST_CASE("Search cursor and batch agree bit for bit on random tables and streams") {
  const auto seed = tsync_test::seed_for(2004);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int iter = 0; iter < 240; ++iter) {
    const auto kind = static_cast<tsync_test::table_kind>(iter % 3);
    const std::size_t n = iter % 7 == 0 ? 1 : 1 + r.u64() % (iter % 5 == 0 ? 2000 : 40);
    auto s = tsync_test::random_samples(r, n, kind);
    const auto mode = iter % 4 == 3 ? correction_mode::step : correction_mode::interpolate;
    if (mode == correction_mode::step && iter % 8 == 7) {  // some scaled step samples
      for (auto& x : s) {
        x.frac_bits = 32;
        x.ratio = (std::uint64_t{1} << 31) + r.u64() % (std::uint64_t{1} << 33);
      }
    }
    const auto pol = static_cast<outside_policy>((iter / 3) % 3);
    INFO("iter " << iter << " samples " << s.size());
    auto t = sync_table::make(s, mode, pol);
    REQUIRE(t.has_value());
    const auto ev = tsync_test::random_stream(r, 3000, tsync::raw_ns(s.front().guest_time), tsync::raw_ns(s.back().guest_time));
    check_agree(*t, ev);
  }
}

TEST_CASE("Every block-kernel copy agrees with the table on long in-order streams of every table kind") {
  const auto seed = tsync_test::seed_for(2011);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int iter = 0; iter < 36; ++iter) {
    const auto kind = static_cast<tsync_test::table_kind>(iter % 3);
    const std::size_t n = std::size_t{2} + static_cast<std::size_t>(iter / 3 % 4) * 20;  // 2, 22, 42, 62 samples
    auto s = tsync_test::random_samples(r, n, kind);
    INFO("iter " << iter << " samples " << s.size());
    auto t = sync_table::make(s, correction_mode::interpolate, static_cast<outside_policy>(iter % 3));
    REQUIRE(t.has_value());
    // Dense and sorted: thousands of events per region, so whole blocks take the block kernels.
    auto ev = tsync_test::random_stream(r, 40000, tsync::raw_ns(s.front().guest_time), tsync::raw_ns(s.back().guest_time));
    std::sort(ev.begin(), ev.end());
    check_agree(*t, ev);
  }
}

TEST_CASE("Agreement holds at sample times and their neighbours") {
  const auto seed = tsync_test::seed_for(2005);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  for (int iter = 0; iter < 60; ++iter) {
    auto s = tsync_test::random_samples(r, 2 + r.u64() % 30, static_cast<tsync_test::table_kind>(iter % 3));
    std::vector<std::int64_t> ev;
    for (const auto& x : s)
      for (std::int64_t d : {-2, -1, 0, 1, 2}) {
        const i128 v = static_cast<i128>(tsync::raw_ns(x.guest_time)) + d;
        if (v >= kMin && v <= kMax) ev.push_back(static_cast<std::int64_t>(v));
      }
    ev.push_back(kMin);
    ev.push_back(kMax);
    for (auto pol : {outside_policy::extrapolate, outside_policy::clamp, outside_policy::reject})
      for (auto mode : {correction_mode::interpolate, correction_mode::step}) {
        auto t = sync_table::make(s, mode, pol);
        REQUIRE(t.has_value());
        check_agree(*t, ev);
      }
  }
}

TEST_CASE("The cursor corrects an in-order stream without binary searches after the first") {
  std::vector<sync_sample> s;
  for (std::int64_t i = 0; i < 4096; ++i) s.push_back(tsync_test::raw_sample(i * 1'000'000, 1000 + i % 7, 1, 0, std::nullopt));
  auto t = sync_table::make(s);
  REQUIRE(t.has_value());
  cursor c(*t);
  std::size_t failures = 0;
  for (std::int64_t g = -5'000'000; g < std::int64_t{4096} * 1'000'000 + 5'000'000; g += 9973)
    failures += c.correct(g).has_value() ? 0u : 1u;
  CHECK(failures == 0);
  CHECK(c.searches() == 1);
  // a backward jump falls back to one search
  REQUIRE(*c.correct(123) == *tsync_test::raw_correct(*t, 123));
  CHECK(c.searches() == 2);
}

TEST_CASE("Batch rejects a too short or partly overlapping output span") {
  auto t = sync_table::make({tsync_test::raw_sample(0, 5, 1, 0, std::nullopt)});
  REQUIRE(t.has_value());
  std::vector<std::int64_t> v{1, 2, 3, 4};
  std::vector<std::int64_t> shortv(3);
  CHECK(correct_batch(*t, std::span<const std::int64_t>(v), std::span<std::int64_t>(shortv)).error() ==
        tsync::index_error{errc::invalid_argument, 0});
  CHECK(correct_batch(*t, std::span<const std::int64_t>(v.data(), 3), std::span<std::int64_t>(v.data() + 1, 3)).error() ==
        tsync::index_error{errc::invalid_argument, 0});
  // identical spans are the in-place case
  const auto st = correct_batch(*t, std::span<const std::int64_t>(v), std::span<std::int64_t>(v));
  CHECK(st.has_value());
  CHECK(v == std::vector<std::int64_t>{6, 7, 8, 9});
}

TEST_CASE("The cursor's 64-bit and 128-bit kernels are exact at the hardest points of a segment") {
  const auto seed = tsync_test::seed_for(2006);
  INFO("seed " << seed);
  tsync_test::rng r(seed);
  int seen[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < 3000; ++i) {
    // segment lengths from 2 to 2^40 and rises from 0 to ± the length (slope 0 .. 2)
    const std::uint64_t len = 2 + (r.u64() >> (24 + r.u64() % 40));
    const std::int64_t t0 = r.range(-(std::int64_t{1} << 61), std::int64_t{1} << 61);
    const std::int64_t o0 = r.range(-(std::int64_t{1} << 60), std::int64_t{1} << 60);
    const std::uint64_t rise_mag = (r.u64() % 4 == 0) ? r.u64() % len : (r.u64() >> (r.u64() % 64)) % len;
    const std::int64_t rise = r.coin(2) ? static_cast<std::int64_t>(rise_mag) : -static_cast<std::int64_t>(rise_mag);
    const std::int64_t t1 = t0 + static_cast<std::int64_t>(len);
    auto t = sync_table::make({tsync_test::raw_sample(t0, o0, 1, 0, std::nullopt), tsync_test::raw_sample(t1, o0 + rise, 1, 0, std::nullopt)},
                              correction_mode::interpolate, outside_policy::clamp);
    REQUIRE(t.has_value());
    const region_kernel& k = t->kernel(1);
    const std::uint64_t rr = k.r % len;
    const std::uint64_t step = rr == 0 ? 1 : len / std::gcd(rr, len);
    const std::uint64_t worst = rr == 0 ? 0 : worst_point(rr, len);
    std::vector<std::int64_t> ev;
    for (std::uint64_t j = 0; j < 300; ++j) {
      const std::uint64_t x = j % 3 == 1   ? r.u64() % len
                              : j % 3 == 2 ? static_cast<std::uint64_t>((static_cast<tsync::u128>(worst) + static_cast<tsync::u128>(step) * (j / 3)) % len)
                                           : (step * (j / 3)) % len;
      ev.push_back(t0 + static_cast<std::int64_t>(x));
    }
    ev.push_back(t0);
    ev.push_back(t1 - 1);
    std::sort(ev.begin(), ev.end());
    cursor c(*t);
    for (const auto g : ev) {
      const auto want = tsync_test::raw_correct(*t, g);
      const auto got = c.correct(g);
      REQUIRE(want.has_value());
      REQUIRE(got.has_value());
      if (*got != *want) {
        INFO("len " << len << " rise " << rise << " t " << g << " kernel " << static_cast<int>(c.kernel_kind()));
        REQUIRE(*got == *want);
      }
    }
    REQUIRE(c.region() == 1);
    ++seen[static_cast<int>(c.kernel_kind())];
  }
  // the draw covers the three product kernels
  CHECK(seen[static_cast<int>(cursor_kernel::bits64)] > 100);
  CHECK(seen[static_cast<int>(cursor_kernel::bits128)] > 100);
  CHECK(seen[static_cast<int>(cursor_kernel::bits128_checked)] > 100);
}

TEST_CASE("The cursor picks its kernel by region: 64-bit on dense tables, 128-bit on longer and long segments") {
  // 1 ms between samples, 100 ppm of drift: 64-bit kernel
  std::vector<sync_sample> dense;
  for (std::int64_t i = 0; i < 100; ++i) dense.push_back(tsync_test::raw_sample(i * 1'000'000, 5'000 + i * 100 * (i % 2 ? 1 : -1), 1, 0, std::nullopt));
  auto a = sync_table::make(dense);
  REQUIRE(a.has_value());
  cursor ca(*a);
  REQUIRE(ca.correct(2'500'000).has_value());
  CHECK(ca.kernel_kind() == cursor_kernel::bits64);
  // 1 s between samples, 1000 ppm: 64-bit products would overflow, the short-form 128-bit kernel
  auto m = sync_table::make({tsync_test::raw_sample(0, 0, 1, 0, std::nullopt), tsync_test::raw_sample(1'000'000'000, 1'000'000, 1, 0, std::nullopt)});
  REQUIRE(m.has_value());
  cursor cm(*m);
  REQUIRE(*cm.correct(500'000'001) == *tsync_test::raw_correct(*m, 500'000'001));
  CHECK(cm.kernel_kind() == cursor_kernel::bits128);
  // 100 s between samples in ns, 50 ppm: x_max * den is about 2^106, the checked 128-bit kernel
  auto b = sync_table::make({tsync_test::raw_sample(0, 0, 1, 0, std::nullopt), tsync_test::raw_sample(100'000'000'000, 5'000'000, 1, 0, std::nullopt)});
  REQUIRE(b.has_value());
  cursor cb(*b);
  REQUIRE(*cb.correct(50'000'000'000) == *tsync_test::raw_correct(*b, 50'000'000'000));
  CHECK(cb.kernel_kind() == cursor_kernel::bits128_checked);
  // a constant offset (step mode, unscaled): 64-bit kernel with no product at all
  auto s = sync_table::make({tsync_test::raw_sample(0, 7, 1, 0, std::nullopt), tsync_test::raw_sample(1000, 9, 1, 0, std::nullopt)},
                            correction_mode::step, outside_policy::clamp);
  REQUIRE(s.has_value());
  cursor cs(*s);
  CHECK(*cs.correct(10) == 17);
  CHECK(cs.kernel_kind() == cursor_kernel::bits64);
  // extrapolating past the last sample: the table's kernel, same results
  auto e = sync_table::make({tsync_test::raw_sample(0, 0, 1, 0, std::nullopt), tsync_test::raw_sample(1000, 1, 1, 0, std::nullopt),
                             tsync_test::raw_sample(2000, 3, 1, 0, std::nullopt)},
                            correction_mode::interpolate, outside_policy::extrapolate);
  REQUIRE(e.has_value());
  cursor ce(*e);
  for (std::int64_t g = 2000; g < 2100; ++g) REQUIRE(*ce.correct(g) == *tsync_test::raw_correct(*e, g));
  CHECK(ce.kernel_kind() == cursor_kernel::table);
  // before the first call
  cursor fresh(*e);
  CHECK(fresh.kernel_kind() == cursor_kernel::slow);
}
