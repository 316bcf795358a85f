// trace_marker_clock: readings of kernel-only trace clocks through a tracefs
// instance. Needs root and tracefs at /sys/kernel/tracing; without them every
// case says why and checks nothing.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <vector>

#include "tsync/clock/trace_marker_clock.hpp"

using tsync::clock::trace_marker_clock;

namespace {

bool tracefs_usable() {
  struct stat st {};
  if (::geteuid() != 0) {
    WARN("SKIP: trace_marker_clock needs root (tracefs instances)");
    return false;
  }
  if (::stat("/sys/kernel/tracing/instances", &st) != 0) {
    WARN("SKIP: no tracefs at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing)");
    return false;
  }
  return true;
}

std::int64_t mono_raw() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct bracketed {
  std::int64_t before, stamp, after;
};

std::vector<bracketed> readings(const trace_marker_clock& c, int n) {
  std::vector<bracketed> out;
  for (int i = 0; i < n; ++i) {
    const auto a = mono_raw();
    const auto s = c.now_raw();
    const auto b = mono_raw();
    out.push_back({a, s, b});
  }
  return out;
}

std::int64_t median(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

TEST_CASE("trace_marker_clock on mono_raw lies inside userspace mono_raw brackets") {
  if (!tracefs_usable()) return;
  auto c = trace_marker_clock::open("mono_raw");
  REQUIRE(c);
  const auto r = readings(*c, 2000);
  std::vector<std::int64_t> width, lead;
  for (const auto& x : r) {
    REQUIRE(x.before <= x.stamp);
    REQUIRE(x.stamp <= x.after);
    width.push_back(x.after - x.before);
    lead.push_back(x.stamp - x.before);
  }
  CHECK(c->failures() == 0);
  std::cerr << "trace_marker_clock mono_raw: cost per stamp (bracket width) median " << median(width) << " ns, min "
            << *std::min_element(width.begin(), width.end()) << " ns, max " << *std::max_element(width.begin(), width.end())
            << " ns; stamp - before median " << median(lead) << " ns\n";
}

TEST_CASE("trace_marker_clock on local: consecutive readings advance as mono_raw does") {
  if (!tracefs_usable()) return;
  auto c = trace_marker_clock::open("local");
  REQUIRE(c);
  CHECK(c->name() == "local");
  const auto r = readings(*c, 2000);
  std::vector<std::int64_t> dev;
  for (std::size_t i = 1; i < r.size(); ++i) {
    // local advanced by ds; mono_raw between the two writes advanced by a value in [lo, hi].
    const auto ds = r[i].stamp - r[i - 1].stamp;
    const auto lo = r[i].before - r[i - 1].after, hi = r[i].after - r[i - 1].before;
    REQUIRE(ds > 0);
    const auto out = ds < lo ? ds - lo : ds > hi ? ds - hi : 0;
    dev.push_back(out);
    // sched_clock and mono_raw share the TSC on x86; allow 1 us of slack.
    CHECK(out >= -1000);
    CHECK(out <= 1000);
  }
  std::vector<std::int64_t> diff;
  for (std::size_t i = 1; i < r.size(); ++i)
    diff.push_back((r[i].stamp - r[i - 1].stamp) - ((r[i].before + r[i].after) / 2 - (r[i - 1].before + r[i - 1].after) / 2));
  std::cerr << "trace_marker_clock local vs mono_raw: consecutive-difference error (local step - mono_raw bracket "
               "midpoint step) median "
            << median(diff) << " ns, min " << *std::min_element(diff.begin(), diff.end()) << " ns, max "
            << *std::max_element(diff.begin(), diff.end()) << " ns; outside the bracket: min "
            << *std::min_element(dev.begin(), dev.end()) << " max " << *std::max_element(dev.begin(), dev.end()) << " ns\n";
}

TEST_CASE("trace_marker_clock refuses a clock the kernel lacks and removes the instance it created") {
  if (!tracefs_usable()) return;
  tsync::clock::trace_marker_options o;
  o.instance = "tsync_clock_test_" + std::to_string(::getpid());
  const std::string dir = o.tracefs + "/instances/" + o.instance;
  auto bad = trace_marker_clock::open("no_such_clock", o);
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == tsync::make_error_code(tsync::errc::unsupported));
  struct stat st {};
  CHECK(::stat(dir.c_str(), &st) != 0);
  {
    auto c = trace_marker_clock::open("global", o);
    REQUIRE(c);
    CHECK(::stat(dir.c_str(), &st) == 0);
    auto copy = *c;
    CHECK(copy.now_raw() >= c->now_raw() - 1'000'000'000);
  }
  CHECK(::stat(dir.c_str(), &st) != 0);
}
