#pragma once
/// \file
/// A connection server for responders: one accept loop and a bounded pool of
/// worker threads. The accept loop only accepts; handshakes (hybrid vsock's
/// `CONNECT` line) and the per-connection handler run on the workers, so silent
/// clients cannot hold up a legitimate one. Limits (docs/security.md):
///
/// - at most `max_connections` connections are served at once (default 64):
///   beyond it a new connection is closed at once and counted as refused;
/// - worker threads are created on demand up to `max_connections` and reused,
///   so memory stays flat however many connections come and go;
/// - a handshake must finish within `handshake_timeout` (default 2 s);
/// - when `accept` fails for lack of resources (`EMFILE`, `ENFILE`, `ENOBUFS`,
///   `ENOMEM`) the loop backs off (`backoff`, default 100 ms) instead of spinning.
///
/// `log` gets one line per state change (cap reached / below cap again, accept
/// failing / accepting again), never one per connection; the capped state is
/// left at most once per `cap_log_interval`, so churn at the cap logs at most
/// two lines a second.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/transport/open.hpp"

namespace tsync::inline TSYNC_ABI::transport {

struct server_options {
  std::size_t max_connections = 64;                          ///< served at once (>= 1)
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(2);
  std::chrono::nanoseconds backoff = std::chrono::milliseconds(100);  ///< after a resource error of accept
  std::chrono::nanoseconds poll = std::chrono::milliseconds(200);     ///< how often `stop` is checked
  std::uint64_t max_accepted = 0;  ///< > 0: stop accepting after this many served connections
  std::function<void(const std::string&)> log;  ///< one line per state change (may be empty)
  /// The capped state is left (and logged) at most this often.
  std::chrono::nanoseconds cap_log_interval = std::chrono::seconds(1);
};

/// Counters of a `server::run`.
struct server_stats {
  std::uint64_t accepted = 0;          ///< handed to a worker
  std::uint64_t refused = 0;           ///< closed at once: the cap was reached
  std::uint64_t handshake_failed = 0;  ///< closed: no valid handshake before the timeout
  std::uint64_t accept_errors = 0;     ///< accept failures (resource errors included)
  std::size_t threads = 0;             ///< worker threads created
};

/// Whether an accept error is a lack of resources (worth backing off, not fatal).
[[nodiscard]] inline bool resource_exhausted(const std::error_code& ec) noexcept {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

class server {
 public:
  /// Handles one framed connection; should return when `stop` is requested.
  using handler = std::function<void(stream_transport&, std::stop_token)>;

  server(listener l, handler h, server_options opt)
      : l_(std::move(l)), h_(std::move(h)), opt_(std::move(opt)) {
    if (opt_.max_connections == 0) opt_.max_connections = 1;
  }
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server() { shut_down(); }

  /// Accept and serve until `stop` is requested or `max_accepted` connections were
  /// handed out; then wait for the running handlers (a stop request stops them)
  /// and join the workers.
  [[nodiscard]] server_stats run(std::stop_token stop) {
    std::stop_callback forward(stop, [this] { handlers_stop_.request_stop(); });
    while (!stop.stop_requested() && (opt_.max_accepted == 0 || stats_.accepted < opt_.max_accepted)) step();
    drain(stop);
    shut_down();
    std::lock_guard lk(mu_);
    return stats_;
  }

  /// One turn of the accept loop: accept (up to `poll`), then refuse, hand off or back off.
  void step() {
    auto p = l_.accept(after(opt_.poll));
    if (!p) {
      on_accept_error(p.error());
      return;
    }
    if (accept_failing_) {
      accept_failing_ = false;
      say("accepting connections again");
    }
    std::unique_lock lk(mu_);
    if (active_ >= opt_.max_connections) {
      ++stats_.refused;
      if (at_cap_) return;  // `p` closes the connection
      at_cap_ = true;
      cap_since_ = std::chrono::steady_clock::now();
      refused_at_cap_ = stats_.refused - 1;
      lk.unlock();
      say("connection cap reached (" + std::to_string(opt_.max_connections) + "): refusing new connections");
      return;
    }
    if (at_cap_ && std::chrono::steady_clock::now() - cap_since_ >= opt_.cap_log_interval) {
      // Leaving the capped state is logged at most once per interval, so a
      // client churning at the cap cannot flood the log.
      at_cap_ = false;
      const auto refused = stats_.refused - refused_at_cap_;
      lk.unlock();
      say("below the connection cap again (" + std::to_string(refused) + " refused meanwhile)");
      lk.lock();
    }
    ++active_;
    ++stats_.accepted;
    queue_.push_back(std::move(*p));
    if (queue_.size() > idle_ && threads_.size() < opt_.max_connections) {
      try {
        threads_.emplace_back([this] { work(); });
      } catch (const std::system_error&) {
        // No thread now: a running worker takes the connection later; with none, drop it.
        if (threads_.empty()) {
          queue_.pop_back();
          --active_;
          --stats_.accepted;
          ++stats_.refused;
        }
      }
    }
    lk.unlock();
    cv_.notify_one();
  }

  /// Connections queued or being served now.
  [[nodiscard]] std::size_t active() const {
    std::lock_guard lk(mu_);
    return active_;
  }

  /// Counters so far.
  [[nodiscard]] server_stats stats() const {
    std::lock_guard lk(mu_);
    auto s = stats_;
    s.threads += threads_.size();
    return s;
  }

 private:
  void say(const std::string& line) {
    if (opt_.log) opt_.log(line);
  }

  void on_accept_error(const std::error_code& ec) {
    if (ec == make_error_code(errc::timed_out)) return;
    {
      std::lock_guard lk(mu_);
      ++stats_.accept_errors;
    }
    if (!accept_failing_) {
      accept_failing_ = true;
      say("accept failed: " + ec.message() + (resource_exhausted(ec) ? " (backing off)" : ""));
    }
    std::this_thread::sleep_for(opt_.backoff);
  }

  void work() {
    std::unique_lock lk(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lk, [&] { return closing_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // closing
      auto p = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      serve_one(std::move(p));
      lk.lock();
      --active_;
      done_cv_.notify_all();
    }
  }

  void serve_one(pending_connection p) {
    auto t = std::move(p).finish(after(opt_.handshake_timeout));
    if (!t) {
      std::lock_guard lk(mu_);
      ++stats_.handshake_failed;
      return;
    }
    h_(*t, handlers_stop_.get_token());
  }

  void drain(std::stop_token stop) {
    std::unique_lock lk(mu_);
    while (active_ > 0) {
      if (stop.stop_requested()) handlers_stop_.request_stop();
      done_cv_.wait_for(lk, opt_.poll);
    }
  }

  void shut_down() {
    std::vector<std::thread> ts;
    {
      std::lock_guard lk(mu_);
      closing_ = true;
      ts.swap(threads_);
      stats_.threads += ts.size();
    }
    cv_.notify_all();
    handlers_stop_.request_stop();
    for (auto& t : ts) t.join();
    std::lock_guard lk(mu_);
    queue_.clear();
  }

  listener l_;
  handler h_;
  server_options opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<pending_connection> queue_;
  std::vector<std::thread> threads_;
  std::size_t active_ = 0, idle_ = 0;
  bool closing_ = false;
  bool at_cap_ = false, accept_failing_ = false;  // accept-loop thread only
  std::chrono::steady_clock::time_point cap_since_{};
  std::uint64_t refused_at_cap_ = 0;
  std::stop_source handlers_stop_;
  server_stats stats_{};
};

}  // namespace tsync::transport
