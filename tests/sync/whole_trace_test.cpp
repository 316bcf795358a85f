// sync/whole_trace.hpp and estimate/breaks.hpp's step_detector: online break
// detection on simulated clocks (pause, forward step, reboot, frequency step),
// no false break on steady simulated and real-link probes, the bounded probe
// reduction, and hard intervals that never exclude the truth.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tsync/io/probes_csv.hpp"
#include "tsync/sync/whole_trace.hpp"

using namespace tsync;
using namespace tsync::sync;

namespace {

struct clock_fn {
  std::function<double(double)> guest;                        // guest time at host time h
  std::function<bool(double)> running = [](double) { return true; };
};

constexpr double t_break = 10.25e9;

// Series of 64 probes every 0.5 s from 5 s to 20 s (host), 10 µs one-way
// minimum, 2 µs exponential queueing; series while the guest is stopped give
// nothing. With `guest_initiates`, t1 and t2 are guest stamps and g the host's
// (the probes of `tsync sync --role guest`).
std::vector<std::vector<probe_sample>> series_of(const clock_fn& c, unsigned seed = 1, bool guest_initiates = false) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> q(1.0 / 2000.0);
  std::vector<std::vector<probe_sample>> out;
  std::uint32_t burst = 0;
  for (double h0 = 5e9; h0 < 20e9; h0 += 0.5e9) {
    std::vector<probe_sample> s;
    for (int i = 0; i < 64; ++i) {
      const double a1 = h0 + i * 50e3;
      const double at = a1 + 10e3 + q(rng);
      const double a2 = at + 10e3 + q(rng);
      const auto id = static_cast<std::uint64_t>(i);
      if (!guest_initiates && c.running(at))
        s.push_back({std::llround(a1), std::llround(c.guest(at)), std::llround(a2), id, burst, 0});
      if (guest_initiates && c.running(a1) && c.running(a2))
        s.push_back({std::llround(c.guest(a1)), std::llround(at), std::llround(c.guest(a2)), id, burst, 0});
    }
    ++burst;
    if (!s.empty()) out.push_back(std::move(s));
  }
  return out;
}

whole_trace_tracker run(const std::vector<std::vector<probe_sample>>& ss, whole_trace_options o = {}) {
  whole_trace_tracker t(o);
  for (const auto& s : ss) (void)t.add_series(s);
  return t;
}

// Every hard interval of the session model holds the truth at every probe's
// guest time, read with the probe's own segment.
void check_hard_bounds(const whole_trace_tracker& t, const std::vector<std::vector<probe_sample>>& ss,
                       const clock_fn& c) {
  auto m = t.fit();
  REQUIRE(m);
  whole_trace_tracker replay(t.options());
  for (const auto& s : ss) {
    std::vector<std::uint32_t> seg;
    (void)replay.add_series(s, &seg);
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (seg[i] == whole_trace_tracker::npos) continue;
      const model_part* part = nullptr;
      for (const auto& p : m->parts)
        if (p.segment == seg[i]) part = &p;
      REQUIRE(part != nullptr);
      auto hb = part->model.hard_bounds(at_ns<guest>(s[i].g));
      REQUIRE(hb);
      // The true host time of guest time g lies in [t1, t2] of the probe.
      CHECK(raw_ns(hb->lo) <= s[i].t2);
      CHECK(raw_ns(hb->hi) >= s[i].t1);
    }
  }
  (void)c;
}

}  // namespace

TEST_CASE("whole_trace: a steady clock gives one segment and no break") {
  clock_fn c{[](double h) { return h - 1e9 + 20e-6 * h; }};
  auto ss = series_of(c);
  auto t = run(ss);
  CHECK(t.breaks().empty());
  CHECK(t.segments().size() == 1);
  auto m = t.fit();
  REQUIRE(m);
  REQUIRE(m->parts.size() == 1);
  auto off = m->parts[0].model.offset_at(at_ns<guest>(10'000'000'000));
  REQUIRE(off);
  // truth: host − guest at guest g is about 1e9 − 20e-6·h
  const double h = (10e9 + 1e9) / (1 + 20e-6);
  CHECK(std::abs(static_cast<double>(off->count()) - (h - (h - 1e9 + 20e-6 * h))) < 2000);
  check_hard_bounds(t, ss, c);
}

TEST_CASE("whole_trace: a pause is a clock_step break between the right probes") {
  const double pause = 3e9;
  clock_fn c{[&](double h) { return h < t_break ? h : (h < t_break + pause ? t_break : h - pause); },
             [&](double h) { return h < t_break || h >= t_break + pause; }};
  auto ss = series_of(c);
  auto t = run(ss);
  REQUIRE(t.breaks().size() == 1);
  const auto& b = t.breaks()[0];
  CHECK(b.kind == estimate::break_kind::clock_step);
  CHECK(b.segment == 1);
  CHECK(static_cast<double>(b.host_before) < t_break);
  CHECK(static_cast<double>(b.host_after) > t_break + pause);
  REQUIRE(b.step);
  CHECK(std::abs(static_cast<double>(*b.step) - pause) < 1e5);
  CHECK(t.segments().size() == 2);
  CHECK(t.segments()[1].epoch == 0);
  check_hard_bounds(t, ss, c);
}

TEST_CASE("whole_trace: a forward clock step of 1 ms is found; one of 100 us by the line test") {
  for (double step : {1e6, 1e5}) {
    clock_fn c{[step](double h) { return h < t_break ? h : h + step; }};
    auto ss = series_of(c);
    auto t = run(ss);
    REQUIRE(t.breaks().size() == 1);
    CHECK(static_cast<double>(t.breaks()[0].guest_before) < t_break + 1);
    CHECK(static_cast<double>(t.breaks()[0].guest_after) > t_break);
    check_hard_bounds(t, ss, c);
  }
}

TEST_CASE("whole_trace: a reboot is a backward break and starts a new epoch") {
  clock_fn c{[](double h) { return h < t_break ? h : h - t_break + 1e9; },
             [](double h) { return h < t_break || h >= t_break + 1e9; }};
  auto ss = series_of(c);
  auto t = run(ss);
  REQUIRE(t.breaks().size() == 1);
  CHECK(t.breaks()[0].kind == estimate::break_kind::backward);
  REQUIRE(t.segments().size() == 2);
  CHECK(t.segments()[1].epoch == 1);
  check_hard_bounds(t, ss, c);
  // Guest times repeat: without the segment, any time is ambiguous.
  std::vector<segment_span> spans;
  for (const auto& s : t.segments()) spans.push_back({s.id, s.epoch, s.first_guest, s.last_guest});
  auto cand = segment_candidates(spans, 6'000'000'000);
  CHECK(candidates_ambiguous(spans, cand));
}

TEST_CASE("whole_trace: a frequency step of 200 ppm is found") {
  clock_fn c{[](double h) { return h < t_break ? h : h + 200e-6 * (h - t_break); }};
  auto ss = series_of(c);
  auto t = run(ss);
  REQUIRE(!t.breaks().empty());
  CHECK(static_cast<double>(t.breaks()[0].guest_after) > t_break);
  CHECK(static_cast<double>(t.breaks()[0].guest_before) < t_break + 2e9);
  check_hard_bounds(t, ss, c);
}

TEST_CASE("whole_trace: a glitched probe is dropped, not a break") {
  clock_fn c{[](double h) { return h; }};
  auto ss = series_of(c);
  ss[5][10].g += 50'000'000;  // one stamp 50 ms off
  auto t = run(ss);
  CHECK(t.breaks().empty());
  CHECK(t.dropped() == 1);
}

TEST_CASE("whole_trace: an external reboot break starts a new epoch at the next series") {
  clock_fn c{[](double h) { return h; }};
  auto ss = series_of(c);
  whole_trace_tracker t;
  (void)t.add_series(ss[0]);
  estimate::clock_break b;
  b.kind = estimate::break_kind::reboot;
  auto r = t.add_break(b);
  CHECK(r.segment == 1);
  (void)t.add_series(ss[1]);
  REQUIRE(t.segments().size() == 2);
  CHECK(t.segments()[1].epoch == 1);
  CHECK(t.segments()[1].probes == ss[1].size());
}

TEST_CASE("whole_trace: memory stays bounded and compaction keeps the hull") {
  clock_fn c{[](double h) { return h + 5e-6 * h; }};
  auto ss = series_of(c);
  whole_trace_options o;
  o.keep_per_series = 8;
  o.max_kept = 64;
  auto small = run(ss, o);
  REQUIRE(small.segments().size() == 1);
  CHECK(small.segments()[0].kept.size() <= 64 + 16);
  whole_trace_options all;
  all.keep_per_series = 64;
  all.max_kept = 1 << 20;
  auto full = run(ss, all);
  auto a = small.fit();
  auto b = full.fit();
  REQUIRE(a);
  REQUIRE(b);
  // The hard interval depends on the envelope hulls only.
  for (std::int64_t g : {5'100'000'000LL, 12'000'000'000LL, 19'000'000'000LL}) {
    auto ha = a->parts[0].model.hard_bounds(at_ns<guest>(g));
    auto hb = b->parts[0].model.hard_bounds(at_ns<guest>(g));
    REQUIRE(ha);
    REQUIRE(hb);
    CHECK(std::abs(raw_ns(ha->lo) - raw_ns(hb->lo)) <= 2);
    CHECK(std::abs(raw_ns(ha->hi) - raw_ns(hb->hi)) <= 2);
  }
}

TEST_CASE("whole_trace: no false break on the real-link fixtures") {
  for (const char* name : {"tcp_loopback", "unix_loopback", "netns_jitter", "netns_bulk"}) {
    std::ifstream in(std::string(TSYNC_TEST_BINARY_DIR) + "/estimate_fixtures/" + name + ".csv");
    REQUIRE(in);
    auto p = io::read_probes_csv(in);
    REQUIRE(p);
    std::vector<std::vector<probe_sample>> ss;
    for (const auto& x : *p) {
      if (ss.empty() || ss.back().back().burst != x.burst) ss.emplace_back();
      ss.back().push_back(x);
    }
    auto t = run(ss);
    INFO(name);
    CHECK(t.breaks().empty());
    auto m = t.fit();
    REQUIRE(m);
    // truth 0: every hard interval holds it
    for (const auto& x : *p) {
      auto hb = m->parts[0].model.hard_bounds(at_ns<guest>(x.g));
      REQUIRE(hb);
      CHECK(raw_ns(hb->lo) <= x.g);
      CHECK(raw_ns(hb->hi) >= x.g);
    }
  }
}

namespace {
std::vector<std::vector<probe_sample>> mirrored(const std::vector<std::vector<probe_sample>>& ss, double max_drift) {
  std::vector<std::vector<probe_sample>> out;
  for (const auto& s : ss) {
    out.emplace_back();
    for (const auto& p : s) out.back().push_back(from_guest_initiator(p, max_drift));
  }
  return out;
}
}  // namespace

TEST_CASE("from_guest_initiator: the host time of the guest midpoint lies in the mirrored probe's interval") {
  // guest = host·(1 + 400 ppm) − 3 s: the offset changes by 400 ppm of the distance.
  const double rate = 1 + 400e-6;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> start(1e9, 1e12), trip(1e3, 5e6);
  for (int i = 0; i < 2000; ++i) {
    const double a1 = start(rng);
    const double at = a1 + trip(rng);
    const double a2 = at + trip(rng);
    const probe_sample p{std::llround(a1 * rate - 3e9), std::llround(at), std::llround(a2 * rate - 3e9), 0, 0, 0};
    const probe_sample m = from_guest_initiator(p, 1e-3);
    const double host_of_m = (static_cast<double>(m.g) + 3e9) / rate;  // the truth
    INFO(i);
    CHECK(static_cast<double>(m.t1) <= host_of_m + 1);  // +1: the rounding of the stamps
    CHECK(static_cast<double>(m.t2) >= host_of_m - 1);
    CHECK(m.g >= p.t1);
    CHECK(m.g <= p.t2);
    // no wider than the round trip plus max_drift of it (and the rounding)
    CHECK(m.t2 - m.t1 <= (p.t2 - p.t1) + static_cast<std::int64_t>(1e-3 * static_cast<double>(p.t2 - p.t1)) + 2);
  }
  // impossible probes stay impossible; results beyond 64 bits are refused the same way
  const probe_sample bad{10, 5, 0, 0, 0, 0};
  CHECK(from_guest_initiator(bad, 1e-3).t2 < from_guest_initiator(bad, 1e-3).t1);
  const probe_sample far{std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
                         std::numeric_limits<std::int64_t>::min() + 10, 0, 0, 0};
  const probe_sample r = from_guest_initiator(far, 1e-3);
  CHECK(r.t2 < r.t1);
}

TEST_CASE("whole_trace: guest-initiated probes find a pause, and the hard bounds hold the truth") {
  const double pause = 3e9;
  clock_fn c{[&](double h) { return h < t_break ? h : (h < t_break + pause ? t_break : h - pause); },
             [&](double h) { return h < t_break || h >= t_break + pause; }};
  const auto ss = mirrored(series_of(c, 3, true), 1e-3);
  auto t = run(ss);
  REQUIRE(t.breaks().size() == 1);
  const auto& b = t.breaks()[0];
  CHECK(b.kind == estimate::break_kind::clock_step);
  CHECK(static_cast<double>(b.host_before) < t_break);
  CHECK(static_cast<double>(b.host_after) > t_break + pause);
  REQUIRE(b.step);
  CHECK(std::abs(static_cast<double>(*b.step) - pause) < 1e5);
  auto m = t.fit();
  REQUIRE(m);
  REQUIRE(m->parts.size() == 2);
  // host = guest before the pause, guest + pause after it
  for (const auto& part : m->parts) {
    const double truth = part.segment == 0 ? 0.0 : pause;
    for (std::int64_t g = part.first_guest; g <= part.last_guest; g += (part.last_guest - part.first_guest) / 16 + 1) {
      auto hb = part.model.hard_bounds(at_ns<guest>(g));
      auto h = part.model.to_host(at_ns<guest>(g));
      REQUIRE(hb);
      REQUIRE(h);
      INFO("segment " << part.segment << " guest " << g);
      CHECK(static_cast<double>(raw_ns(hb->lo)) <= static_cast<double>(g) + truth);
      CHECK(static_cast<double>(raw_ns(hb->hi)) >= static_cast<double>(g) + truth);
      CHECK(std::abs(static_cast<double>(raw_ns(*h) - g) - truth) < 5000);
    }
  }
  check_hard_bounds(t, ss, c);
}
