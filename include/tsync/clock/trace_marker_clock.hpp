#pragma once
/// \file
/// A clock source for the trace clocks userspace cannot read (`local`,
/// `global`, `perf`, `counter`, `uptime`, and any other): each reading writes
/// a marker into `trace_marker_raw` of a dedicated tracefs instance whose
/// `trace_clock` is the wanted clock and reads the ring buffer's timestamp of
/// that marker back from the instance's `trace_pipe` (with the instance's
/// `raw` output option, which prints every event as `pid cpu timestamp ...`
/// with the full nanosecond timestamp). This is how trace-cmd timestamps its
/// own sync probes; the reading is the clock's value at some instant inside
/// the `write()` call.
///
/// Linux only, needs write access to tracefs (usually root). The instance is
/// `tsync_clock_<pid>` by default; it is created when missing and removed by
/// the last copy of the clock when this clock created it. Copies share the
/// instance (readings are serialised by the kernel's ring buffer, not by
/// this class: use one copy per thread).

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "tsync/clock/clock_source.hpp"
#include "tsync/core/config.hpp"
#include "tsync/core/time.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// Where and how `trace_marker_clock::open` works.
struct trace_marker_options {
  std::string tracefs = "/sys/kernel/tracing";  ///< tracefs mount point
  std::string instance{};                       ///< instance name; empty: "tsync_clock_<pid>"
  int timeout_ms = 200;                         ///< how long a reading waits for its marker
};

namespace detail {
inline bool tm_write_file(const std::string& path, std::string_view text) noexcept {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  const auto n = ::write(fd, text.data(), text.size());
  ::close(fd);
  return n == static_cast<ssize_t>(text.size());
}

struct tm_state {
  std::string dir{};
  std::string clock{};
  bool created = false;
  int marker_fd = -1;
  int pipe_fd = -1;
  int timeout_ms = 200;
  std::uint32_t seq = 0;
  std::int64_t last = 0;
  std::uint64_t failures = 0;
  std::string buf{};
  tm_state() = default;
  tm_state(const tm_state&) = delete;
  tm_state& operator=(const tm_state&) = delete;
  ~tm_state() {
    if (marker_fd >= 0) ::close(marker_fd);
    if (pipe_fd >= 0) ::close(pipe_fd);
    if (created) ::rmdir(dir.c_str());
  }
  // The timestamp of the line holding marker `id`, from "pid cpu ts # id buf: ...".
  static bool parse(std::string_view line, std::uint32_t id, std::int64_t& ts) noexcept {
    std::size_t p = 0;
    auto field = [&]() -> std::string_view {
      while (p < line.size() && line[p] == ' ') ++p;
      const std::size_t b = p;
      while (p < line.size() && line[p] != ' ') ++p;
      return line.substr(b, p - b);
    };
    field();
    field();
    const auto t = field();
    if (field() != "#") return false;
    const auto idf = field();
    std::uint64_t v = 0, got = 0;
    for (char c : t) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    for (char c : idf) {
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      got = got * 16 + static_cast<std::uint64_t>(d);
    }
    if (t.empty() || idf.empty() || got != id) return false;
    ts = static_cast<std::int64_t>(v);
    return true;
  }
  bool stamp(std::int64_t& out) noexcept {
    const std::uint32_t id = ++seq;
    if (::write(marker_fd, &id, sizeof id) != static_cast<ssize_t>(sizeof id)) return false;
    char tmp[4096];
    for (int rounds = 0; rounds < 64; ++rounds) {
      pollfd pfd{pipe_fd, POLLIN, 0};
      if (::poll(&pfd, 1, timeout_ms) <= 0) return false;
      const auto n = ::read(pipe_fd, tmp, sizeof tmp);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<std::size_t>(n));
      bool found = false;
      std::size_t start = 0;
      for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1)
        found = parse(std::string_view(buf).substr(start, nl - start), id, out) || found;
      buf.erase(0, start);
      if (found) return true;
    }
    return false;
  }
};
}  // namespace detail

/// A trace clock read through a tracefs instance's ring buffer (see the file
/// comment). `now()` never fails: when a reading cannot be made it returns the
/// previous reading and counts a failure (`failures()`).
class trace_marker_clock {
 public:
  /// Create (or reuse) the instance, set its trace clock to `clock` (a name
  /// from its `trace_clock` file, e.g. "local"), switch on its raw output and
  /// take a first reading. Errors: `errc::not_found` (no tracefs at the path),
  /// `errc::unsupported` (the kernel has no such trace clock), the system error
  /// of a failed open/mkdir/write, `errc::timed_out` when no marker comes back.
  [[nodiscard]] static expected<trace_marker_clock, std::error_code> open(std::string_view clock,
                                                                          trace_marker_options o = {}) {
    struct stat st {};
    if (::stat((o.tracefs + "/instances").c_str(), &st) != 0) return unexpected(make_error_code(errc::not_found));
    auto s = std::make_shared<detail::tm_state>();
    s->clock = std::string(clock);
    s->timeout_ms = o.timeout_ms;
    s->dir = o.tracefs + "/instances/" + (o.instance.empty() ? "tsync_clock_" + std::to_string(::getpid()) : o.instance);
    if (::mkdir(s->dir.c_str(), 0755) == 0) s->created = true;
    else if (errno != EEXIST) return unexpected(std::error_code(errno, std::generic_category()));
    if (!detail::tm_write_file(s->dir + "/trace_clock", s->clock))
      return unexpected(errno == EINVAL ? make_error_code(errc::unsupported) : std::error_code(errno, std::generic_category()));
    if (!detail::tm_write_file(s->dir + "/options/raw", "1") || !detail::tm_write_file(s->dir + "/tracing_on", "1"))
      return unexpected(std::error_code(errno, std::generic_category()));
    s->marker_fd = ::open((s->dir + "/trace_marker_raw").c_str(), O_WRONLY | O_CLOEXEC);
    if (s->marker_fd < 0) return unexpected(std::error_code(errno, std::generic_category()));
    s->pipe_fd = ::open((s->dir + "/trace_pipe").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (s->pipe_fd < 0) return unexpected(std::error_code(errno, std::generic_category()));
    if (!s->stamp(s->last)) return unexpected(make_error_code(errc::timed_out));
    return trace_marker_clock(std::move(s));
  }
  /// The machine whose kernel stamps the markers (the one this process runs on).
  using domain = host;
  /// The ring buffer's timestamp of a marker written now (ns for ns clocks,
  /// counts for `counter` and `x86-tsc`), as a bare integer.
  [[nodiscard]] std::int64_t now_raw() const noexcept {
    std::int64_t t = 0;
    if (s_->stamp(t)) s_->last = t;
    else ++s_->failures;
    return s_->last;
  }
  /// The same reading as a counter value of the host (its unit depends on the trace clock).
  [[nodiscard]] ticks<host> now() const noexcept { return ticks<host>(static_cast<std::uint64_t>(now_raw())); }
  /// The trace clock's name, as given to `open`.
  [[nodiscard]] std::string_view name() const noexcept { return s_->clock; }
  /// Readings that failed (and returned the previous reading).
  [[nodiscard]] std::uint64_t failures() const noexcept { return s_->failures; }
  /// The instance directory.
  [[nodiscard]] const std::string& instance_dir() const noexcept { return s_->dir; }

 private:
  explicit trace_marker_clock(std::shared_ptr<detail::tm_state> s) noexcept : s_(std::move(s)) {}
  std::shared_ptr<detail::tm_state> s_;
};

static_assert(clock_source<trace_marker_clock>);

}  // namespace tsync::clock
