#pragma once
// Test support for the probe and transport tests: clocks, a fault-injecting
// transport wrapper, forked children and the causality checks.
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/probe/message.hpp"
#include "tsync/transport/socketpair.hpp"
#include "tsync/transport/transport.hpp"

namespace tsync::test {

inline std::int64_t mono_raw_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/// Two connected stream transports (a socketpair): `a` initiates, `b` responds.
/// Construct inside a test case (a failure to create the pair throws, which Catch
/// reports as the test's failure).
struct pair_fixture {
  tsync::transport::stream_transport a;
  tsync::transport::stream_transport b;
  pair_fixture() {
    auto p = tsync::transport::make_socketpair();
    if (!p) throw std::system_error(p.error(), "socketpair");
    a = std::move(p->first);
    b = std::move(p->second);
  }
};

/// CLOCK_MONOTONIC_RAW in nanoseconds.
struct raw_clock {
  using domain = tsync::host;
  tsync::domain_time<tsync::host> now() { return tsync::at_ns<tsync::host>(now_raw()); }
  std::int64_t now_raw() { return mono_raw_ns(); }
  std::string_view name() const { return "mono_raw"; }
};

/// CLOCK_MONOTONIC_RAW plus a known offset and drift:
/// `reading(raw) = raw + offset + floor((raw - base) * drift_ppb / 1e9)`.
struct shifted_clock {
  std::int64_t offset = 0;
  std::int64_t drift_ppb = 0;
  std::int64_t base = mono_raw_ns();
  [[nodiscard]] std::int64_t at(std::int64_t raw) const {
    const tsync::i128 d = static_cast<tsync::i128>(raw - base) * drift_ppb;
    return raw + offset + static_cast<std::int64_t>(tsync::floor_div(d, 1000000000));
  }
  using domain = tsync::guest;
  tsync::domain_time<tsync::guest> now() { return tsync::at_ns<tsync::guest>(now_raw()); }
  std::int64_t now_raw() { return at(mono_raw_ns()); }
  std::string_view name() const { return "shifted_mono_raw"; }
};

/// The hard offset interval of a series: [max(g - t2), min(g - t1)].
struct hard_interval {
  std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  bool causal = true;  ///< every probe had t1 <= t2
};
inline hard_interval interval_of(const std::vector<tsync::probe_sample>& ps) {
  hard_interval h;
  for (const auto& p : ps) {
    h.lo = std::max(h.lo, p.g - p.t2);
    h.hi = std::min(h.hi, p.g - p.t1);
    if (p.t1 > p.t2) h.causal = false;
  }
  return h;
}

/// Wraps a transport; `on_send` sees every outgoing message (decoded) and may
/// send something else through `inner` instead (return true when it handled it).
template <class T>
struct fault_transport {
  T& inner;
  std::function<bool(const tsync::probe::message&, std::span<const std::byte>, fault_transport&,
                     tsync::transport::deadline)>
      on_send;
  tsync::expected<void, std::error_code> send(std::span<const std::byte> bytes, tsync::transport::deadline d) {
    if (on_send) {
      auto m = tsync::probe::decode(bytes);
      if (m && on_send(*m, bytes, *this, d)) return {};
    }
    return inner.send(bytes, d);
  }
  tsync::expected<std::size_t, std::error_code> receive(std::vector<std::byte>& b, tsync::transport::deadline d) {
    return inner.receive(b, d);
  }
  tsync::expected<void, std::error_code> send_message(const tsync::probe::message& m, tsync::transport::deadline d) {
    auto v = tsync::probe::encode_to_vector(m);
    if (!v) return tsync::unexpected(v.error());
    return inner.send(*v, d);
  }
};

/// Fork a child that runs `f` and exits with its return value (never returns in the child).
inline pid_t fork_child(const std::function<int()>& f) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    rc = f();
    ::_exit(rc);
  }
  return pid;
}

/// Wait for a child; its exit code, or 128 + signal, or -1.
inline int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace tsync::test
