// Probe exchange speed per transport: probes per second and round-trip-time
// percentiles (p50/p90/p99, from the initiator's t2 − t1) for series of 339
// probes against a responder in a thread (or a forked process), plus a raw
// socketpair ping-pong without framing or codec as the baseline.
#include <benchmark/benchmark.h>

#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tsync/probe/exchange.hpp"
#include "tsync/transport.hpp"

using namespace std::chrono_literals;
using namespace tsync::transport;

namespace {

struct raw_clock {
  using domain = tsync::host;
  tsync::domain_time<tsync::host> now() { return tsync::at_ns<tsync::host>(now_raw()); }
  std::int64_t now_raw() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
  std::string_view name() const { return "mono_raw"; }
};

std::string temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tsync-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

template <class T, class C>
void run_series_loop(benchmark::State& state, T& t, C& clock) {
  std::vector<std::int64_t> rtts;
  std::uint32_t id = 0;
  std::int64_t probes = 0;
  for (auto _ : state) {
    tsync::probe::series_config cfg;
    cfg.series_id = ++id;
    cfg.deadline = after(30s);
    cfg.per_probe_timeout = 5s;
    auto r = tsync::probe::run_series(t, clock, cfg);
    if (!r.ok()) {
      state.SkipWithError(r.error.message().c_str());
      break;
    }
    probes += static_cast<std::int64_t>(r.probes.size());
    for (const auto& p : r.probes) rtts.push_back(p.t2 - p.t1);
  }
  state.SetItemsProcessed(probes);
  if (!rtts.empty()) {
    std::sort(rtts.begin(), rtts.end());
    const auto pct = [&](double q) {
      return static_cast<double>(rtts[static_cast<std::size_t>(q * static_cast<double>(rtts.size() - 1))]);
    };
    state.counters["rtt_p50_ns"] = pct(0.50);
    state.counters["rtt_p90_ns"] = pct(0.90);
    state.counters["rtt_p99_ns"] = pct(0.99);
  }
}

/// Run the initiator over `a` while a thread serves `b`.
template <class T>
void with_thread_responder(benchmark::State& state, T& a, T& b) {
  std::thread responder([&] {
    raw_clock c;
    (void)tsync::probe::serve(b, c, tsync::probe::responder_options{}, after(600s));
  });
  raw_clock c;
  run_series_loop(state, a, c);
  (void)tsync::probe::send_bye(a, after(1s));
  responder.join();
}

void BM_transport_series_socketpair(benchmark::State& state) {
  auto p = make_socketpair();
  if (!p) return state.SkipWithError("socketpair");
  with_thread_responder(state, p->first, p->second);
}
BENCHMARK(BM_transport_series_socketpair)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_transport_series_unix(benchmark::State& state) {
  const auto dir = temp_dir();
  auto l = unix_listener::listen(dir + "/b.sock");
  if (!l) return state.SkipWithError("listen");
  auto a = connect_unix(dir + "/b.sock", after(1s));
  auto b = l->accept(after(1s));
  if (!a || !b) return state.SkipWithError("connect");
  with_thread_responder(state, *a, *b);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_transport_series_unix)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_transport_series_unix_forked(benchmark::State& state) {
  const auto dir = temp_dir();
  const auto path = dir + "/f.sock";
  auto l = unix_listener::listen(path);
  if (!l) return state.SkipWithError("listen");
  const pid_t child = ::fork();
  if (child == 0) {
    auto t = connect_unix(path, after(5s));
    if (!t) ::_exit(2);
    raw_clock c;
    auto st = tsync::probe::serve(*t, c, tsync::probe::responder_options{}, after(600s));
    ::_exit(st ? 0 : 3);
  }
  auto a = l->accept(after(5s));
  if (!a) return state.SkipWithError("accept");
  raw_clock c;
  run_series_loop(state, *a, c);
  (void)tsync::probe::send_bye(*a, after(1s));
  int status = 0;
  ::waitpid(child, &status, 0);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_transport_series_unix_forked)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_transport_series_tcp_loopback(benchmark::State& state) {
  auto l = tcp_listener::listen("127.0.0.1", 0);
  if (!l) return state.SkipWithError("listen");
  auto a = connect_tcp("127.0.0.1", l->port(), after(1s));
  auto b = l->accept(after(1s));
  if (!a || !b) return state.SkipWithError("connect");
  with_thread_responder(state, *a, *b);
}
BENCHMARK(BM_transport_series_tcp_loopback)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_transport_series_fifo_pair(benchmark::State& state) {
  const auto dir = temp_dir();
  if (!make_fifo(dir + "/x") || !make_fifo(dir + "/y")) return state.SkipWithError("mkfifo");
  tsync::expected<stream_transport, std::error_code> b = tsync::unexpected(std::error_code{});
  std::thread opener([&] { b = open_fifo_pair(dir + "/x", dir + "/y", after(5s)); });
  auto a = open_fifo_pair(dir + "/y", dir + "/x", after(5s));
  opener.join();
  if (!a || !b) return state.SkipWithError("open fifo pair");
  with_thread_responder(state, *a, *b);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_transport_series_fifo_pair)->Unit(benchmark::kMillisecond)->UseRealTime();

// Simulated link: probes per second of real time; the RTT counters are virtual
// (10 us + exp(2 us) each way).
void BM_transport_series_simulated(benchmark::State& state) {
  tsync::sim::link_model m;
  m.fwd.min_ns = 10000;
  m.back.min_ns = 10000;
  auto link = simulated_link::make(m, 42);
  if (!link) return state.SkipWithError("link");
  auto a = (*link)->initiator();
  auto b = (*link)->responder();
  link_clock host{*link};
  link_clock guest{*link, 1000000, 0, 0};
  std::thread responder([&] { (void)tsync::probe::serve(b, guest, tsync::probe::responder_options{}, after(600s)); });
  run_series_loop(state, a, host);
  (void)tsync::probe::send_bye(a, after(1s));
  a.reset();
  responder.join();
}
BENCHMARK(BM_transport_series_simulated)->Unit(benchmark::kMillisecond)->UseRealTime();

// Baseline: a bare 16-byte ping-pong over a blocking socketpair (no framing, no codec, no poll).
void BM_baseline_socketpair_pingpong(benchmark::State& state) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return state.SkipWithError("socketpair");
  std::thread echo([&] {
    char buf[16];
    for (;;) {
      const ssize_t r = ::read(fds[1], buf, sizeof buf);
      if (r <= 0) break;
      if (::write(fds[1], buf, static_cast<std::size_t>(r)) != r) break;
    }
  });
  char msg[16] = {};
  std::int64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < 339; ++i) {
      if (::write(fds[0], msg, sizeof msg) != 16) std::abort();
      std::size_t got = 0;
      while (got < sizeof msg) {
        const ssize_t r = ::read(fds[0], msg + got, sizeof msg - got);
        if (r <= 0) std::abort();
        got += static_cast<std::size_t>(r);
      }
    }
    n += 339;
  }
  state.SetItemsProcessed(n);
  ::shutdown(fds[0], SHUT_RDWR);
  echo.join();
  ::close(fds[0]);
  ::close(fds[1]);
}
BENCHMARK(BM_baseline_socketpair_pingpong)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
