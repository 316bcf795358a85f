#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <random>

#include "tsync/core.hpp"

using namespace tsync;

TEST_CASE("ticks wrap modulo 2^64 and their differences are signed") {
  ticks<host> a(5), b(std::numeric_limits<std::uint64_t>::max() - 4);
  CHECK((a - b).count() == 10);   // a is 10 ticks after b across the wrap
  CHECK((b - a).count() == -10);
  CHECK((b + tick_delta<host>(10)) == a);
  CHECK((a - tick_delta<host>(10)) == b);
  CHECK(before(b, a));
  CHECK_FALSE(before(a, b));
}

TEST_CASE("domain times of one domain subtract to a duration") {
  auto h1 = at_ns<host>(1'000);
  auto h2 = at_ns<host>(1'250);
  CHECK((h2 - h1).count() == 250);
}

TEST_CASE("offsets carry their direction and invert") {
  auto g = at_ns<guest>(100);
  auto h = at_ns<host>(1'100);
  auto o = guest_to_host::between(g, h);
  CHECK(o.value().count() == 1'000);
  CHECK(to_host(g, o) == h);
  CHECK(to_guest(h, o) == g);
  CHECK(o.inverse().apply(h) == g);
  offset<host, nested_guest> hn(std::chrono::nanoseconds(-7));
  auto gn = then(o, hn);
  CHECK(gn.value().count() == 993);
}

namespace {
TSYNC_DEFINE_DOMAIN(board_a);
}

TEST_CASE("user-defined domains work like built-in ones") {
  static_assert(clock_domain<board_a>);
  auto t = at_ns<board_a>(42);
  CHECK(t.time_since_epoch().count() == 42);
}

TEST_CASE("mul_u64_u64_shr matches the kernel definition on edge values") {
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  static_assert(mul_u64_u64_shr(max, max, 64) == max - 1);
  CHECK(mul_u64_u64_shr(max, max, 63) == max - 3);  // low 64 bits of floor((2^64-1)^2 / 2^63)
  CHECK(mul_u64_u64_shr(27951088470225859ull, 187650047023786ull, 48) == 18634065191505602ull);
}

TEST_CASE("mul_s64_u64_shr rounds toward zero like the kernel (T15)") {
  const std::uint64_t one_and_half = 3ull << 47;
  CHECK(static_cast<std::int64_t>(mul_s64_u64_shr(-7, one_and_half, 48)) == -10);
  CHECK(static_cast<std::int64_t>(mul_s64_u64_shr(7, one_and_half, 48)) == 10);
  CHECK(static_cast<std::int64_t>(mul_s64_u64_shr(std::numeric_limits<std::int64_t>::min(), 1ull << 48, 48)) ==
        std::numeric_limits<std::int64_t>::min());
}

TEST_CASE("checked arithmetic reports overflow instead of wrapping") {
  constexpr auto imax = std::numeric_limits<std::int64_t>::max();
  constexpr auto imin = std::numeric_limits<std::int64_t>::min();
  CHECK_FALSE(checked_add(imax, std::int64_t{1}).has_value());
  CHECK_FALSE(checked_sub(imin, std::int64_t{1}).has_value());
  CHECK_FALSE(checked_mul(imax, std::int64_t{2}).has_value());
  CHECK(checked_add(std::int64_t{2}, std::int64_t{3}) == 5);
  CHECK_FALSE(checked_add(std::numeric_limits<std::uint64_t>::max(), std::uint64_t{1}).has_value());
  CHECK_FALSE(checked_sub(std::uint64_t{0}, std::uint64_t{1}).has_value());
  CHECK_FALSE(narrow_i64(static_cast<i128>(imax) + 1).has_value());
  CHECK(narrow_u64(static_cast<u128>(7)) == 7u);
  CHECK_FALSE(narrow_u64(static_cast<u128>(1) << 64).has_value());
}

TEST_CASE("wrapping arithmetic is modulo 2^64 and matches 128-bit arithmetic truncated") {
  constexpr auto umax = std::numeric_limits<std::uint64_t>::max();
  static_assert(wrapping_add(umax, 2) == 1);
  static_assert(wrapping_sub(50, 100) == umax - 49);
  static_assert(wrapping_mul(std::uint64_t{1} << 63, 2) == 0);
  std::mt19937_64 rng(777);
  INFO("seed 777");
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t a = rng(), b = rng();
    CHECK(wrapping_add(a, b) == static_cast<std::uint64_t>(static_cast<u128>(a) + b));
    CHECK(wrapping_sub(a, b) == static_cast<std::uint64_t>((static_cast<u128>(a) | (static_cast<u128>(1) << 64)) - b));
    CHECK(wrapping_mul(a, b) == static_cast<std::uint64_t>(static_cast<u128>(a) * b));
  }
}

TEST_CASE("floor_div and ceil_div round as named for every sign combination") {
  std::mt19937_64 rng(12345);
  INFO("seed 12345");
  for (int i = 0; i < 10000; ++i) {
    auto n = static_cast<i128>(static_cast<std::int64_t>(rng())) * 977;
    auto d = static_cast<i128>(static_cast<std::int32_t>(rng()));
    if (d == 0) continue;
    i128 f = floor_div(n, d), c = ceil_div(n, d);
    // f*d <= n < (f+1)*d for d > 0 (mirrored for d < 0)
    if (d > 0) {
      CHECK(f * d <= n);
      CHECK(n < (f + 1) * d);
      CHECK(c * d >= n);
      CHECK(n > (c - 1) * d);
    } else {
      CHECK(f * d >= n);
      CHECK(c * d <= n);
    }
    CHECK(c - f == (n % d == 0 ? 0 : 1));
  }
}

TEST_CASE("errc converts to std::error_code with a readable message") {
  std::error_code ec = errc::ratio_above_max;
  CHECK(ec.category().name() == std::string("tsync"));
  CHECK(ec.message() == "TSC scaling ratio above the vendor maximum");
  CHECK(ec == make_error_code(errc::ratio_above_max));
  CHECK(std::string(to_string(errc::incomplete_scaling)).find("both") != std::string::npos);
}

TEST_CASE("expected holds a value or an error") {
  expected<int, errc> ok = 5;
  expected<int, errc> bad = unexpected(errc::overflow);
  REQUIRE(ok.has_value());
  CHECK(*ok == 5);
  CHECK_FALSE(bad.has_value());
  CHECK(bad.error() == errc::overflow);
  CHECK(bad.value_or(9) == 9);
  expected<std::string, errc> s = std::string("abc");
  auto s2 = s;
  CHECK(*s2 == "abc");
  CHECK(s2->size() == 3);
  expected<void, errc> v;
  CHECK(v.has_value());
  expected<void, errc> ve = unexpected(errc::timed_out);
  CHECK(ve.error() == errc::timed_out);
}
