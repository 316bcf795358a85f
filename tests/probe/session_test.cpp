// Session tests with in-process runners: the probe exchange is replaced by a
// function that fabricates causally consistent probes from a known truth, so
// these tests pin down the session's own behaviour (life cycle, threading,
// failure handling, sign conventions). Tests over real transports between
// processes are in session_process_test.cpp.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tsync/sync/session.hpp"

using namespace tsync;
using namespace tsync::probe;
using namespace tsync::sync;
using namespace std::chrono_literals;

namespace {

// A world whose responder clock reads initiator + offset + drift_ppb * t / 1e9,
// with random one-way delays in [min_delay, min_delay + jitter).
struct fake_world {
  std::int64_t offset = 0;
  std::int64_t drift_ppb = 0;
  std::int64_t min_delay = 2000;
  std::int64_t jitter = 20000;
  std::atomic<std::int64_t> clock{1'000'000'000};

  std::int64_t truth(std::int64_t t) const { return offset + drift_ppb * t / 1'000'000'000; }

  series_outcome run(std::uint32_t seed, std::uint32_t vcpu, std::uint32_t n) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::int64_t> d(min_delay, min_delay + jitter - 1);
    series_outcome out;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::int64_t t1 = clock.fetch_add(100'000);
      const std::int64_t a = d(rng), b = d(rng);
      probe_sample p;
      p.t1 = t1;
      p.g = t1 + a + truth(t1 + a);
      p.t2 = t1 + a + b;
      p.id = i;
      p.vcpu = vcpu;
      out.probes.push_back(p);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("the default estimator is the registry's fastest_response: per-direction minima, causal interval") {
  // Causal intervals [t1 - g, t2 - g]: [-150, 150], [-40, -30], [-50, 50]. The
  // fastest forward trip gives the largest lower bound (-40), the fastest return
  // the smallest upper bound (-30): responder - initiator = -35, so the session's
  // offset (initiator - responder) is 35, at the median responder stamp 1040.
  std::vector<probe_sample> ps = {{0, 150, 300, 0, 0, 0}, {1000, 1040, 1010, 1, 0, 0}, {2000, 2050, 2100, 2, 0, 0}};
  auto e = default_estimator()(ps);
  REQUIRE(e);
  CHECK(e->at == 1005);
  CHECK(e->offset == 35);
  // The envelope [30, 40], widened by the drift allowance over the burst and
  // 1 ns of slope rounding on each side.
  CHECK(e->lo == 28);
  CHECK(e->hi == 42);
  CHECK(e->lo <= e->offset);
  CHECK(e->offset <= e->hi);
  CHECK(e->min_rtt == 10);
  CHECK(e->median_rtt == 100);
  CHECK(e->used == 3);
  CHECK(e->estimator == "fastest_response");
  // Probes that contradict each other (no common offset) are refused, not averaged.
  std::vector<probe_sample> bad = {{0, 150, 100, 0, 0, 0}, {1000, 1040, 1010, 1, 0, 0}, {2000, 2100, 2050, 2, 0, 0}};
  CHECK_FALSE(default_estimator()(bad).has_value());
}

TEST_CASE("the default estimator rejects causality violations and reports empty input") {
  const auto est = default_estimator();
  CHECK(est({}).error() == make_error_code(errc::empty_input));
  std::vector<probe_sample> bad = {{100, 0, 50, 0, 0, 0}};
  CHECK(est(bad).error() == make_error_code(errc::all_rejected));
  bad.push_back({0, 5, 10, 1, 0, 0});
  auto e = est(bad);
  REQUIRE(e);
  CHECK(e->rejected == 1);
  CHECK(e->offset == 0);  // a zero offset is a valid estimate
}

TEST_CASE("the default estimator does not overflow on extreme stamps") {
  const std::int64_t big = std::numeric_limits<std::int64_t>::max() - 10;
  std::vector<probe_sample> ps = {{big - 4, big - 2, big, 0, 0, 0}};
  auto e = default_estimator()(ps);
  REQUIRE(e);
  CHECK(e->at == big - 2);
  CHECK(e->offset == 0);
}

TEST_CASE("to_sync_sample converts responder minus initiator into host minus guest") {
  series_estimate e;
  e.offset = 500;  // responder - initiator
  e.lo = 480;
  e.hi = 530;
  e.at = 10'000;
  auto host_init = to_sync_sample(e, true);  // initiator = host, responder = guest
  CHECK(host_init.offset == guest_to_host(-500));
  CHECK(host_init.guest_time == at_ns<guest>(10'500));
  REQUIRE(host_init.bounds);
  CHECK(host_init.offset.count() + host_init.bounds->lo == -530);
  CHECK(host_init.offset.count() + host_init.bounds->hi == -480);
  auto guest_init = to_sync_sample(e, false);  // initiator = guest, responder = host
  CHECK(guest_init.offset == guest_to_host(500));
  CHECK(guest_init.guest_time == at_ns<guest>(10'000));
  CHECK(guest_init.offset.count() + guest_init.bounds->lo == 480);
  CHECK(guest_init.offset.count() + guest_init.bounds->hi == 530);
}

TEST_CASE("make_session rejects invalid configurations") {
  auto runner = [](std::uint32_t, std::uint32_t, std::uint32_t) { return series_outcome{}; };
  session_config cfg;
  CHECK(make_session({}, cfg).error() == make_error_code(errc::invalid_argument));
  CHECK(make_session({channel{{}, runner}}, cfg).error() == make_error_code(errc::invalid_argument));
  CHECK(make_session({channel{{0}, nullptr}}, cfg).error() == make_error_code(errc::invalid_argument));
  CHECK(make_session({channel{{0, 1}, runner}, channel{{1}, runner}}, cfg).error() ==
        make_error_code(errc::invalid_argument));
  cfg.probes = 0;
  CHECK(make_session({channel{{0}, runner}}, cfg).error() == make_error_code(errc::invalid_argument));
  cfg.probes = 1;
  cfg.interval = -1ms;
  CHECK(make_session({channel{{0}, runner}}, cfg).error() == make_error_code(errc::invalid_argument));
}

TEST_CASE("a session is ready after the first series and runs a last one at stop") {
  fake_world w;
  w.offset = 12'345;
  std::atomic<int> calls{0};
  session_config cfg;
  cfg.probes = 50;
  cfg.interval = 0ms;  // first and last only
  auto s = make_session({channel{{0}, [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
                                   ++calls;
                                   return w.run(id, v, n);
                                 }}},
                        cfg);
  REQUIRE(s);
  auto ready = (*s)->start();
  REQUIRE(ready);
  CHECK(ready->vcpus == 1);
  CHECK(ready->synchronized == 1);
  REQUIRE(ready->first_series.size() == 1);
  CHECK(ready->first_series[0].ok());
  CHECK(calls == 1);
  CHECK((*s)->table(0).size() == 1);
  std::this_thread::sleep_for(20ms);
  CHECK(calls == 1);  // no interval: nothing until stop
  (*s)->stop();
  CHECK(calls == 2);
  auto res = (*s)->results();
  REQUIRE(res.size() == 1);
  REQUIRE(res[0].series.size() == 2);
  CHECK_FALSE(res[0].series[0].final);
  CHECK(res[0].series[1].final);
  CHECK(res[0].series[0].probes_received == 50);
  REQUIRE(res[0].table.size() == 2);
  for (auto& t : res[0].table) {
    REQUIRE(t.bounds);
    // initiator is host: host - guest = -offset, within the hard bounds
    CHECK(t.offset.count() + t.bounds->lo <= -w.offset);
    CHECK(t.offset.count() + t.bounds->hi >= -w.offset);
  }
  CHECK(res[0].series[0].series_id != res[0].series[1].series_id);
  CHECK_FALSE(res[0].peer_lost);
}

TEST_CASE("a session repeats series at the interval and stop is idempotent") {
  fake_world w;
  session_config cfg;
  cfg.probes = 10;
  cfg.interval = 2ms;
  auto s = make_session({channel{{3}, [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) { return w.run(id, v, n); }}},
                        cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  REQUIRE((*s)->wait_for_rounds(4, 10s));
  CHECK((*s)->rounds_completed() >= 4);
  CHECK((*s)->running());
  (*s)->stop();
  (*s)->stop();
  CHECK_FALSE((*s)->running());
  auto res = (*s)->results();
  REQUIRE(res.size() == 1);
  CHECK(res[0].vcpu == 3);
  CHECK(res[0].series.size() >= 5);
  CHECK(res[0].series.back().final);
  CHECK(res[0].table.size() == res[0].series.size());
  for (std::size_t i = 0; i < res[0].series.size(); ++i) {
    CHECK(res[0].series[i].round == i);
    CHECK(res[0].series[i].table_index == i);
  }
  // start after stop is refused
  CHECK((*s)->start().error() == make_error_code(errc::invalid_argument));
}

TEST_CASE("a zero offset is a valid sample and is kept") {
  fake_world w;
  w.offset = 0;
  w.min_delay = 1000;
  w.jitter = 1;  // symmetric delays: every probe's offset is exactly 0
  session_config cfg;
  cfg.probes = 5;
  cfg.interval = 0ms;
  auto s = make_session({channel{{0}, [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) { return w.run(id, v, n); }}},
                        cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  (*s)->stop();
  auto t = (*s)->table(0);
  REQUIRE(t.size() == 2);
  CHECK(t[0].offset == guest_to_host(0));
  CHECK(t[1].offset == guest_to_host(0));
}

TEST_CASE("series of vCPUs on different channels run in parallel") {
  fake_world w;
  std::atomic<int> inside{0}, max_inside{0};
  auto runner = [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
    const int now = ++inside;
    int m = max_inside.load();
    while (now > m && !max_inside.compare_exchange_weak(m, now)) {
    }
    std::this_thread::sleep_for(30ms);
    auto out = w.run(id, v, n);
    --inside;
    return out;
  };
  session_config cfg;
  cfg.probes = 5;
  cfg.interval = 0ms;
  std::vector<channel> chs;
  for (std::uint32_t v = 0; v < 4; ++v) chs.push_back(channel{{v}, runner});
  auto s = make_session(std::move(chs), cfg);
  REQUIRE(s);
  auto ready = (*s)->start();
  REQUIRE(ready);
  CHECK(ready->synchronized == 4);
  (*s)->stop();
  CHECK(max_inside.load() >= 2);
  for (auto& r : (*s)->results()) CHECK(r.table.size() == 2);
}

TEST_CASE("the vCPUs of one channel are probed one after another") {
  fake_world w;
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  std::vector<std::uint32_t> order;
  std::mutex om;
  auto runner = [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
    if (++inside > 1) overlap = true;
    {
      std::lock_guard lk(om);
      order.push_back(v);
    }
    auto out = w.run(id, v, n);
    --inside;
    return out;
  };
  session_config cfg;
  cfg.probes = 5;
  cfg.interval = 0ms;
  auto s = make_session({channel{{5, 2, 9}, runner}}, cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  (*s)->stop();
  CHECK_FALSE(overlap);
  CHECK(order == std::vector<std::uint32_t>{5, 2, 9, 5, 2, 9});
}

TEST_CASE("a failed series is recorded and the session continues") {
  fake_world w;
  w.offset = -777;
  std::atomic<int> n_calls{0};
  auto runner = [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
    const int k = n_calls++;
    if (k == 1) return series_outcome{{}, make_error_code(errc::timed_out)};
    if (k == 2) {  // fails part-way: the probes that arrived still count
      auto out = w.run(id, v, 3);
      out.error = make_error_code(errc::protocol_error);
      return out;
    }
    return w.run(id, v, n);
  };
  session_config cfg;
  cfg.probes = 20;
  cfg.interval = 1ms;
  auto s = make_session({channel{{0}, runner}}, cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  REQUIRE((*s)->wait_for_rounds(5, 10s));
  (*s)->stop();
  auto res = (*s)->results();
  REQUIRE(res[0].series.size() >= 6);
  CHECK(res[0].series[0].ok());
  CHECK(res[0].series[1].error == make_error_code(errc::timed_out));
  CHECK_FALSE(res[0].series[1].table_index.has_value());
  CHECK(res[0].series[2].error == make_error_code(errc::protocol_error));
  CHECK(res[0].series[2].probes_received == 3);
  CHECK(res[0].series[2].table_index.has_value());  // partial series still estimated
  CHECK(res[0].series[3].ok());
  CHECK_FALSE(res[0].peer_lost);
  CHECK(res[0].table.size() == res[0].series.size() - 1);
}

TEST_CASE("an estimator error is recorded as the series error") {
  fake_world w;
  session_config cfg;
  cfg.probes = 5;
  cfg.interval = 0ms;
  std::atomic<int> k{0};
  cfg.estimator = [&](std::span<const probe_sample> ps) -> expected<series_estimate, std::error_code> {
    if (k++ == 0) return unexpected(make_error_code(errc::all_rejected));
    return default_estimator()(ps);
  };
  auto s = make_session({channel{{0}, [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) { return w.run(id, v, n); }}},
                        cfg);
  REQUIRE(s);
  // the only vCPU's first series gives no estimate: start reports it
  auto r = (*s)->start();
  REQUIRE_FALSE(r);
  CHECK(r.error() == make_error_code(errc::all_rejected));
  auto res = (*s)->results();
  REQUIRE_FALSE(res[0].series.empty());
  CHECK(res[0].series[0].error == make_error_code(errc::all_rejected));
}

TEST_CASE("a lost peer ends its channel and keeps what was collected") {
  fake_world w;
  std::atomic<int> calls0{0};
  auto dying = [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
    if (calls0++ >= 2) {
      auto out = w.run(id, v, 2);
      out.error = make_error_code(errc::peer_closed);
      return out;
    }
    return w.run(id, v, n);
  };
  auto healthy = [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) { return w.run(id, v, n); };
  session_config cfg;
  cfg.probes = 10;
  cfg.interval = 1ms;
  std::atomic<int> callbacks{0};
  cfg.on_series = [&](const series_record&) { ++callbacks; };
  auto s = make_session({channel{{0}, dying}, channel{{1}, healthy}}, cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  REQUIRE((*s)->wait_for_rounds(6, 10s));  // vCPU 1 keeps going
  (*s)->stop();
  auto res = (*s)->results();
  REQUIRE(res.size() == 2);
  CHECK(res[0].peer_lost);
  CHECK(res[0].end_error == make_error_code(errc::peer_closed));
  REQUIRE(res[0].series.size() == 3);  // no final series on a lost peer
  CHECK(res[0].table.size() == 3);     // the 2 probes of the dying series still count
  CHECK(res[0].series[2].error == make_error_code(errc::peer_closed));
  CHECK_FALSE(res[1].peer_lost);
  CHECK(res[1].series.size() >= 7);
  CHECK(res[1].series.back().final);
  CHECK(static_cast<std::size_t>(callbacks.load()) == res[0].series.size() + res[1].series.size());
}

TEST_CASE("a session whose every peer is lost stops by itself") {
  session_config cfg;
  cfg.probes = 5;
  cfg.interval = 1ms;
  auto gone = [](std::uint32_t, std::uint32_t, std::uint32_t) {
    return series_outcome{{}, std::make_error_code(std::errc::connection_reset)};
  };
  auto s = make_session({channel{{0}, gone}}, cfg);
  REQUIRE(s);
  auto r = (*s)->start();
  REQUIRE_FALSE(r);
  CHECK(r.error() == std::make_error_code(std::errc::connection_reset));
  CHECK_FALSE((*s)->running());
  auto res = (*s)->results();
  CHECK(res[0].peer_lost);
  CHECK(res[0].series.size() == 1);
}

TEST_CASE("results can be read while the session runs") {
  fake_world w;
  session_config cfg;
  cfg.probes = 20;
  cfg.interval = 0ms;
  cfg.interval = std::chrono::microseconds(200);
  std::vector<channel> chs;
  for (std::uint32_t v = 0; v < 3; ++v)
    chs.push_back(channel{{v}, [&](std::uint32_t id, std::uint32_t vc, std::uint32_t n) { return w.run(id, vc, n); }});
  auto s = make_session(std::move(chs), cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  std::size_t seen = 0;
  for (int i = 0; i < 200; ++i) {
    auto res = (*s)->results();
    for (auto& r : res) {
      CHECK(r.table.size() <= r.series.size());
      seen = std::max(seen, r.series.size());
    }
    (void)(*s)->rounds_completed();
  }
  (*s)->stop();
  CHECK(seen >= 1);
}

TEST_CASE("a session destroyed without stop joins its threads") {
  fake_world w;
  session_config cfg;
  cfg.probes = 5;
  cfg.interval = 1ms;
  {
    auto s = make_session({channel{{0}, [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) { return w.run(id, v, n); }}},
                          cfg);
    REQUIRE(s);
    REQUIRE((*s)->start());
  }
  SUCCEED("destructor returned");
}

TEST_CASE("pinning to a CPU that does not exist is an error and not a crash") {
  CHECK(pin_current_thread(1u << 30).error() == make_error_code(errc::not_found));
  // Catch assertions are not thread-safe: collect in the thread, check after join.
  bool pinned = false, affinity_read = false, on_cpu0 = false;
  int count = 0;
  std::thread t([&] {
    pinned = pin_current_thread(0).has_value();
    if (pinned) {
      cpu_set_t set;
      CPU_ZERO(&set);
      affinity_read = sched_getaffinity(0, sizeof(set), &set) == 0;
      on_cpu0 = CPU_ISSET(0, &set);
      count = CPU_COUNT(&set);
    }
  });
  t.join();
  if (pinned) {
    CHECK(affinity_read);
    CHECK(on_cpu0);
    CHECK(count == 1);
  }
}

TEST_CASE("is_peer_lost separates a gone peer from a failed series") {
  CHECK(is_peer_lost(make_error_code(errc::peer_closed)));
  CHECK(is_peer_lost(std::make_error_code(std::errc::broken_pipe)));
  CHECK(is_peer_lost(std::make_error_code(std::errc::connection_reset)));
  CHECK_FALSE(is_peer_lost(make_error_code(errc::timed_out)));
  CHECK_FALSE(is_peer_lost(make_error_code(errc::protocol_error)));
  CHECK_FALSE(is_peer_lost({}));
}

TEST_CASE("max_rounds gives every vCPU the same number of series whatever its speed") {
  fake_world w;
  auto fast = [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) { return w.run(id, v, n); };
  auto slow = [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
    std::this_thread::sleep_for(15ms);
    return w.run(id, v, n);
  };
  session_config cfg;
  cfg.probes = 5;
  cfg.interval = 1ms;
  cfg.max_rounds = 3;
  auto s = make_session({channel{{0}, fast}, channel{{1}, slow}}, cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  REQUIRE((*s)->wait_for_rounds(3, 10s));
  std::this_thread::sleep_for(30ms);  // the fast channel must not run ahead meanwhile
  (*s)->stop();
  for (const auto& r : (*s)->results()) {
    INFO("vcpu " << r.vcpu);
    CHECK(r.series.size() == 4);
    CHECK(r.series.back().final);
  }
}

TEST_CASE("every registry estimator chosen by name gives an interval that holds the truth") {
  fake_world w;
  w.offset = -123'456;
  for (auto name : tsync::estimate::names()) {
    INFO("estimator " << name);
    auto est = named_estimator(std::string(name));
    REQUIRE(est);
    for (std::uint32_t seed = 1; seed <= 5; ++seed) {
      auto out = w.run(seed, 0, 339);
      auto e = (*est)(out.probes);
      REQUIRE(e);
      CHECK(e->estimator == name);
      CHECK(e->lo <= w.offset);
      CHECK(w.offset <= e->hi);
      CHECK(e->lo <= e->offset);
      CHECK(e->offset <= e->hi);
      CHECK(e->min_rtt > 0);
    }
  }
  CHECK(named_estimator("no_such_estimator").error() == make_error_code(errc::not_found));
}

TEST_CASE("the session's fastest_response and the registry's (tsync estimate) agree bit for bit") {
  fake_world w;
  w.offset = 777;
  w.drift_ppb = 3000;
  std::mutex mu;
  std::map<std::uint32_t, std::vector<probe_sample>> probes_of;  // series id -> probes
  session_config cfg;
  cfg.probes = 60;
  cfg.interval = 1ms;  // (zero would mean: the first series and the last only)
  cfg.max_rounds = 3;
  auto s = make_session({channel{{0}, [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
                                   auto out = w.run(id, v, n);
                                   std::lock_guard lk(mu);
                                   probes_of[id] = out.probes;
                                   return out;
                                 }}},
                        cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  REQUIRE((*s)->wait_for_rounds(3, 10s));
  (*s)->stop();
  const auto res = (*s)->results();
  REQUIRE(res.size() == 1);
  REQUIRE(res[0].series.size() >= 3);
  for (const auto& rec : res[0].series) {
    REQUIRE(rec.ok());
    REQUIRE(rec.table_index);
    const auto& ps = probes_of.at(rec.series_id);
    // What `tsync estimate --estimator fastest_response` computes: the registry's fit with default options.
    auto m = tsync::estimate::fit("fastest_response", ps, tsync::estimate::fit_options{});
    REQUIRE(m);
    REQUIRE_FALSE(m->segments.empty());  // the session reads the first segment, as here
    const std::int64_t ref = m->segments.front().ref;
    const auto off = m->offset_at(at_ns<guest>(ref));  // initiator - responder at responder time ref
    const auto hb = m->hard_bounds(at_ns<guest>(ref));
    REQUIRE(off);
    REQUIRE(hb);
    const auto& e = *rec.estimate;
    CHECK(e.estimator == m->estimator);
    CHECK(e.offset == -off->count());
    CHECK(e.at == ref + off->count());
    CHECK(e.lo == ref - raw_ns(hb->hi));  // the model's hard interval, never widened
    CHECK(e.hi == ref - raw_ns(hb->lo));
    CHECK(e.lo <= e.offset);
    CHECK(e.offset <= e.hi);
    // the table entry (initiator = host): the responder is the guest, at guest time ref
    const auto& t = res[0].table[*rec.table_index];
    CHECK(t.guest_time == at_ns<guest>(ref));
    CHECK(t.offset == *off);
    CHECK(t == to_sync_sample(e, true));
    // and the same as the named estimator a user selects
    auto named = named_estimator("fastest_response");
    REQUIRE(named);
    auto again = (*named)(ps);
    REQUIRE(again);
    CHECK(again->offset == e.offset);
    CHECK(again->at == e.at);
    CHECK(again->lo == e.lo);
    CHECK(again->hi == e.hi);
  }
}
