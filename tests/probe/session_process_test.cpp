// Sessions between two real processes on this machine: a forked responder runs
// `serve()` over a real transport (socketpair, Unix socket, TCP, FIFO pair) and
// the parent runs a session of real probe series over it.
//
// 1. Both sides read CLOCK_MONOTONIC_RAW, so the true offset is 0: the hard
//    interval of every series must contain 0 and the estimate lie inside it.
// 2. The responder reads CLOCK_MONOTONIC_RAW through an adjusted_clock with a
//    known offset and drift: every series' interval must contain the true offset
//    at its time, and the drift between series must be recovered within the
//    bounds the intervals allow.
// 3. Faults: the responder is killed mid-session; the responder refuses a series.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsync/clock.hpp"
#include "tsync/probe.hpp"
#include "tsync/transport.hpp"
#include "tsync/sync.hpp"

using namespace tsync;
using namespace tsync::probe;
using namespace tsync::sync;
using namespace std::chrono_literals;

namespace {

enum class kind { socketpair, unix_socket, tcp, fifo };

const char* name_of(kind k) {
  switch (k) {
    case kind::socketpair: return "socketpair";
    case kind::unix_socket: return "unix";
    case kind::tcp: return "tcp";
    case kind::fifo: return "fifo";
  }
  return "?";
}

std::string temp_path(const std::string& stem) {
  return (std::filesystem::path(TSYNC_TEST_BINARY_DIR) /
          (stem + "." + std::to_string(::getpid()) + "." + std::to_string(std::rand())))
      .string();
}

// The responder body run in the child: serve over `t` with `clock` until bye or peer loss.
template <class C> int serve_child(transport::stream_transport& t, C& clock, std::uint32_t refuse_series = 0) {
  responder_options opt;
  opt.idle_timeout = 20s;  // never outlive a crashed parent
  opt.on_series_start = [refuse_series](const start_msg& s) -> std::error_code {
    if (refuse_series != 0 && s.series_id == refuse_series) return make_error_code(errc::unsupported);
    return {};
  };
  auto r = serve(t, clock, opt);
  return r ? 0 : 3;
}

// A forked responder connected to the parent by one of the transports.
struct peer {
  pid_t pid = -1;
  transport::stream_transport t;
  std::string cleanup;
  std::string cleanup2;

  int wait() {
    int st = 0;
    if (pid > 0 && ::waitpid(pid, &st, 0) == pid) {
      pid = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    return -1;
  }
  void kill_now() {
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  ~peer() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (!cleanup.empty()) ::unlink(cleanup.c_str());
    if (!cleanup2.empty()) ::unlink(cleanup2.c_str());
  }
};

// Fork a responder that serves with the clock `make_clock()` returns, connected over `k`.
template <class MakeClock>
void spawn(peer& p, kind k, MakeClock make_clock, std::uint32_t refuse_series = 0) {
  using namespace tsync::transport;
  const auto d = after(10s);
  auto child = [&](auto connect) {
    auto clk = make_clock();
    auto t = connect();
    if (!t) ::_exit(2);
    ::_exit(serve_child(*t, clk, refuse_series));
  };
  switch (k) {
    case kind::socketpair: {
      auto sp = make_socketpair();
      REQUIRE(sp);
      p.pid = ::fork();
      REQUIRE(p.pid >= 0);
      if (p.pid == 0) {
        auto mine = std::move(sp->second);
        { auto drop = std::move(sp->first); }
        child([&]() -> expected<stream_transport, std::error_code> { return std::move(mine); });
      }
      p.t = std::move(sp->first);
      { auto drop = std::move(sp->second); }
      return;
    }
    case kind::unix_socket: {
      const auto path = temp_path("sess.sock");
      auto l = unix_listener::listen(path);
      REQUIRE(l);
      p.pid = ::fork();
      REQUIRE(p.pid >= 0);
      if (p.pid == 0) child([&] { return connect_unix(path, d); });
      auto t = l->accept(d);
      REQUIRE(t);
      p.t = std::move(*t);
      return;
    }
    case kind::tcp: {
      auto l = tcp_listener::listen("127.0.0.1", 0);
      REQUIRE(l);
      const auto port = l->port();
      p.pid = ::fork();
      REQUIRE(p.pid >= 0);
      if (p.pid == 0) child([&] { return connect_tcp("127.0.0.1", port, d); });
      auto t = l->accept(d);
      REQUIRE(t);
      p.t = std::move(*t);
      return;
    }
    case kind::fifo: {
      const auto a = temp_path("sess.to_agent");
      const auto b = temp_path("sess.from_agent");
      REQUIRE(make_fifo(a).has_value());
      REQUIRE(make_fifo(b).has_value());
      p.cleanup = a;
      p.cleanup2 = b;
      // A FIFO reads as end-of-file while it has no writer, so a side whose open
      // returns first could see the peer as gone: both sides confirm over a
      // side channel that both directions are open before any message flows.
      int sync[2];
      REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sync) == 0);
      p.pid = ::fork();
      REQUIRE(p.pid >= 0);
      if (p.pid == 0) {
        ::close(sync[0]);
        child([&]() -> expected<stream_transport, std::error_code> {
          auto t = open_fifo_pair(a, b, d);
          char c = 'r';
          if (!t || ::write(sync[1], &c, 1) != 1 || ::read(sync[1], &c, 1) != 1) ::_exit(2);
          return t;
        });
      }
      ::close(sync[1]);
      auto t = open_fifo_pair(b, a, d);
      INFO((t ? std::string("ok") : t.error().message()));
      REQUIRE(t);
      char c = 0;
      REQUIRE(::read(sync[0], &c, 1) == 1);
      REQUIRE(::write(sync[0], &c, 1) == 1);
      ::close(sync[0]);
      p.t = std::move(*t);
      return;
    }
  }
}

void say_bye(peer& p) { (void)send_bye(p.t, transport::after(2s)); }

}  // namespace

TEST_CASE("series between processes over real transports contain the zero offset of a shared clock") {
  for (kind k : {kind::socketpair, kind::unix_socket, kind::tcp, kind::fifo}) {
    INFO("transport " << name_of(k));
    peer p;
    spawn(p, k, [] { return clock::mono_raw_clock{}; });
    clock::mono_raw_clock mine;
    session_config cfg;
    cfg.interval = 5ms;
    auto s = make_session({channel{{0, 1}, make_series_runner(p.t, mine)}}, cfg);
    REQUIRE(s);
    auto ready = (*s)->start();
    REQUIRE(ready);
    CHECK(ready->synchronized == 2);
    REQUIRE((*s)->wait_for_rounds(3, 30s));
    (*s)->stop();
    say_bye(p);
    CHECK(p.wait() == 0);
    for (const auto& r : (*s)->results()) {
      INFO("vcpu " << r.vcpu);
      CHECK_FALSE(r.peer_lost);
      REQUIRE(r.series.size() >= 4);
      CHECK(r.table.size() == r.series.size());
      for (const auto& rec : r.series) {
        INFO("series " << rec.series_id);
        CHECK(rec.ok());
        CHECK(rec.probes_received == default_series_probes);
        REQUIRE(rec.estimate);
        const auto& e = *rec.estimate;
        CHECK(e.lo <= 0);
        CHECK(e.hi >= 0);
        CHECK(e.lo <= e.offset);
        CHECK(e.offset <= e.hi);
        CHECK(e.min_rtt > 0);
      }
      for (const auto& t : r.table) {
        REQUIRE(t.bounds);
        CHECK(t.offset.count() + t.bounds->lo <= 0);
        CHECK(t.offset.count() + t.bounds->hi >= 0);
        CHECK(t.bounds->lo <= 0);
        CHECK(t.bounds->hi >= 0);
      }
    }
  }
}

TEST_CASE("series between processes recover a known offset and drift within their intervals") {
  const std::int64_t offset = -3'000'000'000;  // the guest clock is 3 s behind
  const std::int64_t drift_ppb = 1'000'000;    // and runs 1000 ppm fast
  for (kind k : {kind::socketpair, kind::unix_socket, kind::tcp, kind::fifo}) {
    INFO("transport " << name_of(k));
    clock::mono_raw_clock mine;
    const clock::offset_drift od{offset, drift_ppb, mine.now_raw()};
    peer p;
    spawn(p, k, [od] { return clock::adjusted_clock<clock::mono_raw_clock>(clock::mono_raw_clock{}, od); });
    // The same adjustment on this side gives the truth at any initiator time.
    clock::adjusted_clock<clock::mono_raw_clock> truth(clock::mono_raw_clock{}, od);
    session_config cfg;
    cfg.probes = 200;
    cfg.interval = 60ms;
    auto s = make_session({channel{{0}, make_series_runner(p.t, mine)}}, cfg);
    REQUIRE(s);
    REQUIRE((*s)->start());
    REQUIRE((*s)->wait_for_rounds(3, 30s));
    (*s)->stop();
    say_bye(p);
    CHECK(p.wait() == 0);
    auto res = (*s)->results();
    REQUIRE(res.size() == 1);
    const auto& r = res[0];
    REQUIRE(r.series.size() >= 4);
    for (const auto& rec : r.series) {
      REQUIRE(rec.ok());
      const auto& e = *rec.estimate;
      // Within one probe the drift moves the offset by at most drift * rtt / 2.
      const std::int64_t slack = e.min_rtt * drift_ppb / 1'000'000'000 / 2 + 1;
      const std::int64_t true_offset = truth.true_offset_at(e.at);  // responder - initiator at `at`
      INFO("series " << rec.series_id << " estimate " << e.offset << " in [" << e.lo << ", " << e.hi
                     << "] truth " << true_offset);
      CHECK(e.lo - slack <= true_offset);
      CHECK(true_offset <= e.hi + slack);
      CHECK(std::llabs(e.offset - true_offset) <= (e.hi - e.lo) + slack);
    }
    // Drift: the slope between the first and last table entries (host - guest per guest ns).
    const auto& a = r.table.front();
    const auto& b = r.table.back();
    REQUIRE(a.bounds);
    REQUIRE(b.bounds);
    const double dt = static_cast<double>((b.guest_time - a.guest_time).count());
    REQUIRE(dt > 1e8);
    const std::int64_t ao = a.offset.count();
    const std::int64_t bo = b.offset.count();
    const double slope = static_cast<double>(bo - ao) / dt;
    const double slope_lo = static_cast<double>((bo + b.bounds->lo) - (ao + a.bounds->hi)) / dt;
    const double slope_hi = static_cast<double>((bo + b.bounds->hi) - (ao + a.bounds->lo)) / dt;
    // guest = host + offset + d*(host - anchor)  =>  d(host - guest)/d(guest) = -d / (1 + d)
    const double d = static_cast<double>(drift_ppb) * 1e-9;
    const double true_slope = -d / (1.0 + d);
    INFO("slope " << slope << " in [" << slope_lo << ", " << slope_hi << "] truth " << true_slope);
    CHECK(slope_lo <= true_slope + 1e-9);
    CHECK(true_slope - 1e-9 <= slope_hi);
    CHECK(std::abs(slope - true_slope) < 0.25 * d);
    // Offset at the first entry: host - guest = -(offset + drift term)
    CHECK(std::llabs(ao + truth.true_offset_at(tsync::raw_ns(tsync::to_host(a.guest_time, a.offset)))) <=
          a.bounds->hi - a.bounds->lo + 10);
  }
}

TEST_CASE("a responder killed mid-session ends the session cleanly with its samples kept") {
  for (kind k : {kind::socketpair, kind::unix_socket, kind::tcp}) {
    INFO("transport " << name_of(k));
    peer p;
    spawn(p, k, [] { return clock::mono_raw_clock{}; });
    clock::mono_raw_clock mine;
    session_config cfg;
    cfg.probes = 100;
    cfg.interval = 2ms;
    series_config base;
    base.per_probe_timeout = 200ms;
    auto s = make_session({channel{{0}, make_series_runner(p.t, mine, base)}}, cfg);
    REQUIRE(s);
    REQUIRE((*s)->start());
    REQUIRE((*s)->wait_for_rounds(2, 30s));
    p.kill_now();
    CHECK(p.wait() == 128 + SIGKILL);
    // The channel notices on its next series and ends by itself.
    for (int i = 0; i < 500 && (*s)->running(); ++i) std::this_thread::sleep_for(10ms);
    CHECK_FALSE((*s)->running());
    (*s)->stop();
    auto res = (*s)->results();
    REQUIRE(res.size() == 1);
    const auto& r = res[0];
    CHECK(r.peer_lost);
    INFO("end error " << r.end_error.message());
    CHECK(is_peer_lost(r.end_error));
    REQUIRE(r.series.size() >= 3);
    CHECK(r.table.size() >= 2);
    CHECK(r.series[0].ok());
    CHECK(r.series[1].ok());
    CHECK(r.series.back().error == r.end_error);
  }
}

TEST_CASE("a series the responder refuses is recorded and the session continues") {
  peer p;
  spawn(p, kind::unix_socket, [] { return clock::mono_raw_clock{}; }, /*refuse_series=*/2);
  clock::mono_raw_clock mine;
  session_config cfg;
  cfg.probes = 50;
  cfg.interval = 2ms;
  auto s = make_session({channel{{0}, make_series_runner(p.t, mine)}}, cfg);
  REQUIRE(s);
  REQUIRE((*s)->start());
  REQUIRE((*s)->wait_for_rounds(4, 30s));
  (*s)->stop();
  say_bye(p);
  CHECK(p.wait() == 0);
  auto r = (*s)->results()[0];
  REQUIRE(r.series.size() >= 5);
  CHECK(r.series[0].ok());
  CHECK(r.series[1].series_id == 2);
  CHECK(r.series[1].error);
  CHECK_FALSE(r.series[1].table_index.has_value());
  for (std::size_t i = 2; i < r.series.size(); ++i) CHECK(r.series[i].ok());
  CHECK_FALSE(r.peer_lost);
  CHECK(r.table.size() == r.series.size() - 1);
}

TEST_CASE("vCPUs on separate connections are probed in parallel with the responder pinned") {
  // One Unix connection per vCPU; the responder serves each in its own thread,
  // pinned to the vCPU (CPU 0 and 1 when they exist; pinning failures are only counted).
  const auto path = temp_path("sess.par.sock");
  auto l = transport::unix_listener::listen(path);
  REQUIRE(l);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 0;
    {
      std::jthread th[2];
      int rcs[2] = {0, 0};
      for (int i = 0; i < 2; ++i) {
        th[i] = std::jthread([&, i] {
          auto t = transport::connect_unix(path, transport::after(10s));
          if (!t) {
            rcs[i] = 2;
            return;
          }
          clock::mono_raw_clock c;
          responder_options opt;
          opt.idle_timeout = 20s;
          opt.on_series_start = pin_on_series_start();
          rcs[i] = serve(*t, c, opt) ? 0 : 3;
        });
      }
      for (auto& t : th) t.join();
      rc = rcs[0] | rcs[1];
    }
    ::_exit(rc);
  }
  auto t0 = l->accept(transport::after(10s));
  auto t1 = l->accept(transport::after(10s));
  REQUIRE(t0);
  REQUIRE(t1);
  clock::mono_raw_clock c0, c1;
  session_config cfg;
  cfg.interval = 0ms;
  auto s = make_session({channel{{0}, make_series_runner(*t0, c0)}, channel{{1}, make_series_runner(*t1, c1)}}, cfg);
  REQUIRE(s);
  auto ready = (*s)->start();
  REQUIRE(ready);
  CHECK(ready->synchronized == 2);
  (*s)->stop();
  (void)send_bye(*t0, transport::after(2s));
  (void)send_bye(*t1, transport::after(2s));
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  for (const auto& r : (*s)->results()) {
    REQUIRE(r.table.size() == 2);
    for (const auto& t : r.table) {
      CHECK(t.offset.count() + t.bounds->lo <= 0);
      CHECK(t.offset.count() + t.bounds->hi >= 0);
    }
  }
}

TEST_CASE("an estimator chosen by name at run time keeps the zero offset inside its interval") {
  for (const char* name : {"split_envelope", "median", "convex_hull"}) {
    INFO("estimator " << name);
    peer p;
    spawn(p, kind::unix_socket, [] { return clock::mono_raw_clock{}; });
    clock::mono_raw_clock mine;
    session_config cfg;
    cfg.interval = 0ms;
    auto est = named_estimator(name);
    REQUIRE(est);
    cfg.estimator = *est;
    auto s = make_session({channel{{0}, make_series_runner(p.t, mine)}}, cfg);
    REQUIRE(s);
    REQUIRE((*s)->start());
    (*s)->stop();
    say_bye(p);
    CHECK(p.wait() == 0);
    auto r = (*s)->results()[0];
    REQUIRE(r.series.size() == 2);
    for (const auto& rec : r.series) {
      REQUIRE(rec.ok());
      CHECK(rec.estimate->estimator == name);
      CHECK(rec.estimate->lo <= 0);
      CHECK(rec.estimate->hi >= 0);
    }
  }
}
