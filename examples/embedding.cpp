// How a tracer embeds a sync session and corrects its guest events onto the
// host timeline (see docs/embedding.md).
//
// The "guest" is a forked process whose clock is CLOCK_MONOTONIC_RAW shifted by
// a known offset and drift (an adjusted_clock), so the example can check its
// answers: it runs `serve()` as the responder. The "host" (this process) runs a
// session of probe series over a socketpair while it "traces", builds the sync
// table of vCPU 0, maps some guest event times to host time and checks each
// against the truth. Exit status 0 only if every check passes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include "tsync/clock.hpp"
#include "tsync/sync.hpp"
#include "tsync/transport.hpp"
#include "tsync/probe.hpp"
#include "tsync/tsync.hpp"

namespace {

constexpr std::int64_t guest_offset_ns = 2'500'000'000;  // guest clock ahead by 2.5 s
constexpr std::int64_t guest_drift_ppb = 50'000;         // and 50 ppm fast

int fail(const char* what) {
  std::fprintf(stderr, "embedding: FAILED: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  namespace clk = tsync::clock;
  namespace probe = tsync::probe;
  namespace sy = tsync::sync;

  clk::mono_raw_clock host_clock;
  const clk::offset_drift truth_params{guest_offset_ns, guest_drift_ppb, host_clock.now()};

  // 1. A channel to the peer. Any transport works; a socketpair needs no setup.
  auto pair = tsync::transport::make_socketpair();
  if (!pair) return fail("socketpair");

  // 2. The peer: a responder answering probes with its own clock.
  const pid_t pid = ::fork();
  if (pid < 0) return fail("fork");
  if (pid == 0) {
    auto mine = std::move(pair->second);
    { auto drop = std::move(pair->first); }
    clk::adjusted_clock<clk::mono_raw_clock> guest_clock(clk::mono_raw_clock{}, truth_params);
    probe::responder_options opt;
    opt.on_series_start = sy::pin_on_series_start();  // pin to the vCPU; failure only reported
    opt.idle_timeout = 10s;
    auto r = probe::serve(mine, guest_clock, opt);
    ::_exit(r ? 0 : 3);
  }
  auto t = std::move(pair->first);
  { auto drop = std::move(pair->second); }

  // 3. The session: one channel serving vCPU 0, a series every 20 ms.
  sy::session_config cfg;
  cfg.probes = 339;
  cfg.interval = 20ms;
  cfg.initiator_is_host = true;  // we stamp t1/t2 with the host clock
  auto s = sy::make_session({sy::channel{{0}, sy::make_series_runner(t, host_clock)}}, cfg);
  if (!s) return fail("make_session");
  auto ready = (*s)->start();  // returns after the first series: tracing may start now
  if (!ready) {
    std::fprintf(stderr, "embedding: first series failed: %s\n", ready.error().message().c_str());
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return 1;
  }

  // 4. "Trace": record guest event times (read from the guest's clock model) and
  //    the true host time of each, while the session keeps sampling.
  clk::adjusted_clock<clk::mono_raw_clock> guest_view(clk::mono_raw_clock{}, truth_params);
  struct event {
    std::int64_t guest_ts;
    std::int64_t host_truth;
  };
  std::vector<event> events;
  for (int i = 0; i < 8; ++i) {
    const std::int64_t h = host_clock.now();
    events.push_back({clk::apply_offset_drift(h, truth_params.offset_ns, truth_params.drift_ppb, truth_params.anchor), h});
    std::this_thread::sleep_for(15ms);
  }

  // 5. Stop: a last series covers the end of the trace. Say goodbye to the peer.
  (*s)->stop();
  (void)probe::send_bye(t, tsync::transport::after(1s));
  int st = 0;
  ::waitpid(pid, &st, 0);

  // 6. Build the sync table of vCPU 0 and correct the events.
  auto samples = (*s)->table(0);
  std::printf("vCPU 0: %zu sync samples\n", samples.size());
  const auto results = (*s)->results();  // a copy: keep it alive while iterating
  for (const auto& rec : results[0].series) {
    if (rec.estimate)
      std::printf("  series %u: offset %lld ns in [%lld, %lld], min rtt %lld ns, %lld us\n", rec.series_id,
                  static_cast<long long>(rec.estimate->offset), static_cast<long long>(rec.estimate->lo),
                  static_cast<long long>(rec.estimate->hi), static_cast<long long>(rec.estimate->min_rtt),
                  static_cast<long long>(rec.duration.count() / 1000));
    else
      std::printf("  series %u failed: %s\n", rec.series_id, rec.error.message().c_str());
  }
  if (samples.size() < 3) return fail("too few sync samples");
  auto table = tsync::correct::sync_table::make(std::move(samples));
  if (!table) return fail("sync_table::make");

  int bad = 0;
  for (const auto& e : events) {
    auto host = table->correct(e.guest_ts);
    if (!host) return fail("correct");
    const std::int64_t err = *host - e.host_truth;
    // Each sample is within its hard interval (a few tens of us on a loaded
    // machine); between samples the drift is interpolated.
    const auto b = table->bounds_at(e.guest_ts);
    const std::int64_t allowed = (b ? b->hi - b->lo : 0) + 2000;
    std::printf("  guest %lld -> host %lld (truth %lld, error %lld ns, allowed %lld)\n",
                static_cast<long long>(e.guest_ts), static_cast<long long>(*host),
                static_cast<long long>(e.host_truth), static_cast<long long>(err), static_cast<long long>(allowed));
    if (std::llabs(err) > allowed) ++bad;
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("responder did not exit cleanly");
  if (bad != 0) return fail("corrected times outside their bounds");
  std::printf("embedding: OK\n");
  return 0;
}
