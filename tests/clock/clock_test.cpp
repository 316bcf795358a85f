#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tsync/clock.hpp"

using namespace tsync;
using namespace tsync::clock;

TEST_CASE("every POSIX clock opens and reads nanoseconds that do not go backwards") {
  for (auto id : {posix_clock_id::monotonic_raw, posix_clock_id::monotonic, posix_clock_id::boottime,
                  posix_clock_id::realtime, posix_clock_id::tai}) {
    INFO(std::string(to_string(id)));
    auto c = posix_clock::open(id);
    REQUIRE(c.has_value());
    CHECK(c->name() == to_string(id));
    CHECK(c->resolution() > 0);
    const auto a = c->now();
    const auto b = c->now();
    CHECK(raw_ns(a) > 0);
    if (id != posix_clock_id::realtime && id != posix_clock_id::tai) CHECK(b >= a);
  }
}

TEST_CASE("mono_raw_clock agrees with posix_clock monotonic_raw") {
  auto p = posix_clock::open(posix_clock_id::monotonic_raw);
  REQUIRE(p);
  mono_raw_clock m;
  const auto a = m.now();
  const auto b = p->now();
  const auto c = m.now();
  CHECK(a <= b);
  CHECK(b <= c);
  CHECK((c - a).count() < 1'000'000'000);
}

TEST_CASE("posix clock names parse back by exact match only") {
  for (auto id : {posix_clock_id::monotonic_raw, posix_clock_id::monotonic, posix_clock_id::boottime,
                  posix_clock_id::realtime, posix_clock_id::tai}) {
    CHECK(parse_posix_clock(to_string(id)) == id);
  }
  CHECK_FALSE(parse_posix_clock("mono_ra").has_value());
  CHECK_FALSE(parse_posix_clock("MONO").has_value());
  CHECK_FALSE(parse_posix_clock(" mono").has_value());
}

TEST_CASE("the TSC clock is monotonic on x86-64 and unsupported elsewhere") {
  auto c = tsc_clock::open(tsc_read::lfence_rdtsc);
#if TSYNC_HAVE_TSC
  REQUIRE(c.has_value());
  CHECK(c->name() == "x86-tsc");
  auto prev = c->now();
  for (int i = 0; i < 1000; ++i) {
    const auto v = c->now();
    CHECK((v - prev).count() >= 0);
    prev = v;
  }
  auto p = tsc_clock::open(tsc_read::rdtscp_lfence);
  if (query_tsc_features().rdtscp) {
    REQUIRE(p.has_value());
    std::uint32_t cpu = 9999;
    const auto a = p->now(cpu);
    CHECK(cpu < 4096);
    CHECK((p->now() - a).count() >= 0);
  } else {
    CHECK(p.error() == make_error_code(errc::unsupported));
  }
#else
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error() == make_error_code(errc::unsupported));
#endif
}

TEST_CASE("query_tsc_features reads the rdtscp bit that the kernel reports in /proc/cpuinfo") {
#if TSYNC_HAVE_TSC
  // Reads CPUID leaf 0x80000000 (a maximum above INT_MAX) and 0x80000001: under the ubsan-int
  // preset this is the case that caught clang's __get_cpuid_max converting that leaf to int.
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  bool found = false, kernel_rdtscp = false;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) kernel_rdtscp = kernel_rdtscp || w == "rdtscp";
    found = true;
    break;
  }
  if (!found) {
    SUCCEED("no flags line in /proc/cpuinfo");
    return;
  }
  CHECK(query_tsc_features().rdtscp == kernel_rdtscp);
#else
  CHECK_FALSE(query_tsc_features().rdtscp);
  CHECK_FALSE(query_tsc_features().invariant);
#endif
}

TEST_CASE("the TSC advances at a rate of a plausible CPU frequency") {
  auto c = tsc_clock::open();
  if (!c) {
    SUCCEED("no TSC on this platform");
    return;
  }
  mono_raw_clock m;
  const auto t0 = m.now();
  const auto c0 = c->now();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto t1 = m.now();
  const auto c1 = c->now();
  const double ghz = static_cast<double>((c1 - c0).count()) / static_cast<double>((t1 - t0).count());
  INFO("TSC rate " << ghz << " GHz");
  CHECK(ghz > 0.1);
  CHECK(ghz < 10.0);
}

TEST_CASE("apply_offset_drift adds the offset and floors the drift term") {
  CHECK(apply_offset_drift(1000, 5, 0, 0) == 1005);
  // 1 ppm over 1 s = 1000 ns
  CHECK(apply_offset_drift(1'000'000'000, 0, 1000, 0) == 1'000'001'000);
  // negative drift before the anchor: (-1) * 1000 / 1e9 floors to -1
  CHECK(apply_offset_drift(999, 0, 1, 1000) == 998);
  CHECK(apply_offset_drift(1000, 0, 1, 999) == 1000);  // 1e-9 floors to 0
  // saturation instead of wrap
  CHECK(apply_offset_drift(INT64_MAX - 1, 10, 0, 0) == INT64_MAX);
  CHECK(apply_offset_drift(INT64_MIN + 1, -10, 0, 0) == INT64_MIN);
}

TEST_CASE("apply_offset_drift matches exact rational arithmetic on random inputs") {
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> t(-(1LL << 50), 1LL << 50);
  std::uniform_int_distribution<std::int64_t> ppb(-1'000'000, 1'000'000);
  for (int i = 0; i < 10000; ++i) {
    const auto x = t(rng), a = t(rng), o = t(rng), d = ppb(rng);
    const auto r = apply_offset_drift(x, o, d, a);
    const i128 num = static_cast<i128>(x - a) * d;
    const i128 term = static_cast<i128>(r) - x - o;
    // floor: term*1e9 <= num < (term+1)*1e9
    CHECK(term * 1'000'000'000 <= num);
    CHECK(num < (term + 1) * 1'000'000'000);
  }
}

TEST_CASE("adjusted_clock reports the offset it adds to its base") {
  adjusted_clock<mono_raw_clock> c(mono_raw_clock{}, {5'000'000, 100'000, 0});
  mono_raw_clock base;
  const auto b0 = base.now_raw();
  const auto r = c.now_raw();
  const auto b1 = base.now_raw();
  CHECK(r - c.true_offset_at(b0) >= b0);
  CHECK(r - c.true_offset_at(b1) <= b1);
  CHECK(c.true_offset_at(0) == 5'000'000);
  CHECK(c.true_offset_at(1'000'000'000) == 5'100'000);
}

TEST_CASE("simulated_clock follows virtual time through its offset and drift") {
  auto vt = std::make_shared<virtual_time>(1'000'000'000);
  simulated_clock c(vt, {-7, 2000, 1'000'000'000});
  CHECK(c.now() == at_ns<host>(1'000'000'000 - 7));
  vt->advance(1'000'000'000);
  CHECK(c.now() == at_ns<host>(2'000'000'000 - 7 + 2000));
  c.set_offset(100);
  CHECK(c.now() == at_ns<host>(2'000'000'000 + 100 + 2000));
  c.set_drift(0, 0);
  CHECK(c.now() == at_ns<host>(2'000'000'100));
  vt->set(5);
  CHECK(c.now() == at_ns<host>(105));
  CHECK(c.reading_at(10) == 110);
}

TEST_CASE("clock sources carry their domain in the type of now()") {
  static_assert(std::same_as<decltype(mono_raw_clock{}.now()), domain_time<host>>);
  static_assert(std::same_as<decltype(basic_mono_raw_clock<guest>{}.now()), domain_time<guest>>);
  static_assert(std::same_as<reading_t<tsc_clock>, ticks<host>>);
  static_assert(std::same_as<reading_t<basic_any_clock<guest>>, ticks<guest>>);
  static_assert(std::same_as<reading_t<adjusted_clock<mono_raw_clock, guest>>, domain_time<guest>>);
  static_assert(std::same_as<reading_t<adjusted_clock<tsc_clock>>, ticks<host>>);
  static_assert(std::same_as<reading_t<basic_simulated_clock<guest>>, domain_time<guest>>);
  // typed and raw readings agree
  auto vt = std::make_shared<virtual_time>(42);
  basic_simulated_clock<guest> g(vt, {8, 0, 0});
  CHECK(g.now() == at_ns<guest>(50));
  CHECK(g.now_raw() == 50);
  adjusted_clock<basic_mono_raw_clock<guest>, host> h(basic_mono_raw_clock<guest>{}, {-50, 0, 0});
  static_assert(std::same_as<decltype(h.now()), domain_time<host>>);
}

TEST_CASE("simulated_clock with a step per read is strictly increasing across threads") {
  auto vt = std::make_shared<virtual_time>(0);
  simulated_clock c(vt, {}, 3);
  std::vector<std::int64_t> a(2000), b(2000);
  {
    std::jthread t1([&] { for (auto& v : a) v = c.now_raw(); });
    std::jthread t2([&] { for (auto& v : b) v = c.now_raw(); });
  }
  for (std::size_t i = 1; i < a.size(); ++i) CHECK(a[i] > a[i - 1]);
  for (std::size_t i = 1; i < b.size(); ++i) CHECK(b[i] > b[i - 1]);
  CHECK(vt->now() == 3 * 4000);
}

TEST_CASE("open_clock gives userspace sources by name and refuses the others") {
  for (auto n : {"mono_raw", "mono", "boot", "tai", "realtime"}) {
    INFO(n);
    auto c = open_clock(n);
    REQUIRE(c.has_value());
    CHECK(c->name() == n);
    CHECK_FALSE(c->counts_cycles());
    CHECK(c->now().count() > 0);
  }
  auto t = open_clock("x86-tsc");
#if TSYNC_HAVE_TSC
  REQUIRE(t.has_value());
  CHECK(t->counts_cycles());
#else
  CHECK(t.error() == make_error_code(errc::unsupported));
#endif
  for (auto n : {"local", "global", "perf", "counter", "uptime"}) {
    INFO(n);
    CHECK(open_clock(n).error() == make_error_code(errc::unsupported));
  }
  CHECK(open_clock("mono_raw ").error() == make_error_code(errc::not_found));
  CHECK(open_clock("").error() == make_error_code(errc::not_found));
}
