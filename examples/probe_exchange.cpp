// Runnable example: one probe series between two processes over a socketpair.
//
// The parent is the initiator, a forked child the responder; both read
// CLOCK_MONOTONIC_RAW, so the true offset is 0 and must lie inside the hard
// interval [max(g - t2), min(g - t1)] of the series. Exits non-zero otherwise.
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string_view>

#include "tsync/probe/exchange.hpp"
#include "tsync/transport/socketpair.hpp"

namespace {
// A clock source of one's own: a domain, a typed now() and the raw reading the exchange stamps with.
struct mono_raw {
  using domain = tsync::host;
  tsync::domain_time<tsync::host> now() { return tsync::at_ns<tsync::host>(now_raw()); }
  std::int64_t now_raw() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
  std::string_view name() const { return "mono_raw"; }
};
}  // namespace

int main() {
  using namespace std::chrono_literals;
  namespace tp = tsync::transport;
  namespace pr = tsync::probe;

  auto pair = tp::make_socketpair();
  if (!pair) {
    std::fprintf(stderr, "socketpair: %s\n", pair.error().message().c_str());
    return 1;
  }
  const pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {  // responder
    pair->first = tp::stream_transport{};
    mono_raw clock;
    auto st = pr::serve(pair->second, clock, pr::responder_options{}, tp::after(10s));
    ::_exit(st ? 0 : 2);
  }
  pair->second = tp::stream_transport{};

  mono_raw clock;
  pr::series_config cfg;  // 339 probes, series 0, vCPU 0
  cfg.deadline = tp::after(5s);
  const auto r = pr::run_series(pair->first, clock, cfg);
  (void)pr::send_bye(pair->first, tp::after(1s));
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!r.ok()) {
    std::fprintf(stderr, "series failed: %s (%zu samples kept)\n", r.error.message().c_str(), r.probes.size());
    return 1;
  }

  std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  std::int64_t min_rtt = std::numeric_limits<std::int64_t>::max();
  for (const auto& p : r.probes) {
    lo = std::max(lo, p.g - p.t2);
    hi = std::min(hi, p.g - p.t1);
    min_rtt = std::min(min_rtt, p.t2 - p.t1);
  }
  std::printf("probes %zu, min RTT %lld ns\n", r.probes.size(), static_cast<long long>(min_rtt));
  std::printf("offset (responder - initiator) in [%lld, %lld] ns\n", static_cast<long long>(lo),
              static_cast<long long>(hi));
  const bool ok = lo <= 0 && 0 <= hi && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::printf("true offset 0 %s the interval\n", ok ? "lies inside" : "is NOT inside");
  return ok ? 0 : 1;
}
