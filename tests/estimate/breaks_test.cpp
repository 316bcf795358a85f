// Discontinuities of the guest clock on simulated links: a pause (the guest
// clock stands still, then resumes: the offset jumps), a forward clock step,
// a frequency step and a reboot (guest time starts again from near zero).
// The named behaviour: NO hard interval excludes the truth at any time at
// which the guest runs, and nothing is interpolated across a break.
#include "synth.hpp"  // first: enables the Eigen estimators when available

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tsync/estimate.hpp"

using namespace tsync;
using namespace tsync::estimate;

namespace {

// A guest clock: guest time of host time h, and whether the guest runs at h.
struct guest_clock {
  std::function<double(double)> guest;
  std::function<bool(double)> running = [](double) { return true; };
};

constexpr double t_break = 10.4e9;  // host time of the break (between bursts 5 and 6)

guest_clock pause_clock(double pause) {
  return {[pause](double h) { return h < t_break ? h - 1e9 : (h < t_break + pause ? t_break - 1e9 : h - pause - 1e9); },
          [pause](double h) { return h < t_break || h >= t_break + pause; }};
}
guest_clock step_clock(double step) {
  return {[step](double h) { return h < t_break ? h - 1e9 : h - 1e9 + step; }};
}
guest_clock frequency_step_clock(double drho) {
  return {[drho](double h) { return h < t_break ? h - 1e9 : h - 1e9 + drho * (h - t_break); }};
}
guest_clock reboot_clock() {
  return {[](double h) { return h < t_break ? h - 1e9 : h - t_break + 2e9; },
          [](double h) { return h < t_break || h >= t_break + 1e9; }};  // one second to boot
}

// Probes: a burst of 64 every second from host 5 s to 24 s, 10 µs minimum
// one-way delays and 2 µs exponential queueing. Bursts while the guest does
// not run are not answered.
std::vector<probe_sample> probes(const guest_clock& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> q(1.0 / 2e3);
  std::vector<probe_sample> out;
  std::uint32_t burst = 0;
  for (int b = 0; b < 20; ++b) {
    double h = 5e9 + b * 1e9;
    if (!c.running(h)) continue;
    for (std::uint64_t i = 0; i < 64; ++i) {
      const double t1 = std::floor(h);
      const double arrive = t1 + 10e3 + q(rng);
      const double t2 = std::ceil(arrive + 10e3 + q(rng));
      out.push_back({static_cast<std::int64_t>(t1), static_cast<std::int64_t>(std::floor(c.guest(arrive))),
                     static_cast<std::int64_t>(t2), i, burst, 0});
      h = t2 + 2e3;
    }
    ++burst;
  }
  return out;
}

// Every host time h in [from, to) (step 1 ms) at which the guest runs: its
// guest stamp g = floor(guest(h)) must map to a hard interval holding h.
std::size_t misses(const model& m, const guest_clock& c, double from, double to) {
  std::size_t bad = 0;
  for (double h = from; h < to; h += 1e6) {
    if (!c.running(h)) continue;
    const double gd = c.guest(h);
    const auto g = static_cast<std::int64_t>(std::floor(gd));
    auto hb = m.hard_bounds(tsync::at_ns<tsync::guest>(g));
    REQUIRE(hb);
    // The host time of the integer guest time g is within 1 ns of h.
    if (static_cast<double>(tsync::raw_ns(hb->lo)) > h + 1 || static_cast<double>(tsync::raw_ns(hb->hi)) < h - 1) ++bad;
  }
  return bad;
}

bool has_break(const model& m) {
  return std::any_of(m.segments.begin(), m.segments.end(), [](const segment& s) {
    return s.diag.cause == boundary_cause::step || s.diag.cause == boundary_cause::gap;
  });
}

const std::vector<std::string> breaking = {"segmented", "split_envelope", "fastest_response", "median", "histogram_peak"};

}  // namespace

TEST_CASE("a pause of the guest splits the model and no hard interval excludes the truth") {
  const auto c = pause_clock(5e9);
  const auto v = probes(c, 1);
  for (const auto& name : breaking) {
    CAPTURE(name);
    auto m = fit(name, v);
    REQUIRE(m);
    CHECK(has_break(*m));
    CHECK(misses(*m, c, 3e9, 27e9) == 0);
  }
  // One line cannot hold both sides: the hull says so instead of guessing.
  CHECK(fit("convex_hull", v).error() == errc::infeasible);
}

TEST_CASE("a forward clock step splits the model and no hard interval excludes the truth") {
  const auto c = step_clock(3e6);  // the guest clock jumps 3 ms ahead
  const auto v = probes(c, 2);
  for (const auto& name : breaking) {
    CAPTURE(name);
    auto m = fit(name, v);
    REQUIRE(m);
    CHECK(has_break(*m));
    CHECK(misses(*m, c, 3e9, 27e9) == 0);
  }
}

TEST_CASE("a frequency step splits the segmented model and no hard interval excludes the truth") {
  const auto c = frequency_step_clock(50e-6);
  const auto v = probes(c, 3);
  auto m = fit("segmented", v);
  REQUIRE(m);
  CHECK(m->segments.size() >= 2);
  CHECK(misses(*m, c, 3e9, 27e9) == 0);
  // The point estimate follows both lines (no interpolation over the kink).
  for (double h : {7e9, 20e9}) {
    const auto g = static_cast<std::int64_t>(c.guest(h));
    auto th = m->to_host(tsync::at_ns<tsync::guest>(g));
    REQUIRE(th);
    CHECK(std::fabs(static_cast<double>(tsync::raw_ns(*th)) - h) < 3e3);
  }
}

TEST_CASE("a reboot makes one-timeline fits refuse and each epoch gets its own model") {
  const auto c = reboot_clock();
  const auto v = probes(c, 4);
  for (auto name : names()) {
    CAPTURE(std::string(name));
    CHECK(fit(name, v).error() == errc::ambiguous);
  }
  const auto epochs = split_epochs(v);
  REQUIRE(epochs.size() == 2);
  CHECK(epochs[1].first_burst == 6);
  for (const auto& name : breaking) {
    CAPTURE(name);
    auto ms = fit_epochs(v, [&](std::span<const probe_sample> p) { return fit(name, p); });
    REQUIRE(ms);
    REQUIRE(ms->size() == 2);
    CHECK(misses((*ms)[0], c, 3e9, t_break) == 0);
    CHECK(misses((*ms)[1], c, t_break, 27e9) == 0);
  }
}

TEST_CASE("a steady trace has one epoch and no break") {
  const auto c = step_clock(0);
  const auto v = probes(c, 5);
  CHECK(split_epochs(v).size() == 1);
  for (const auto& name : breaking) {
    CAPTURE(name);
    auto m = fit(name, v);
    REQUIRE(m);
    CHECK_FALSE(has_break(*m));
  }
}
