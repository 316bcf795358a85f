#pragma once
/// \file
/// A simulated link in virtual time: two message transports (the initiator's
/// and the responder's end) joined by a `tsync::sim::link_model` (per-direction
/// minimum delay plus queueing, loss, duplicates, reordering, spikes, asymmetry
/// steps), sharing one virtual clock.
///
/// Virtual time: the link keeps a virtual host time in ns (`now()`). It stands
/// still while either end is running and advances only when *both* ends wait in
/// `receive()`: then it jumps to the earliest event, a message arrival or the
/// end of a receive's timeout, and that end resumes. So a probe exchange between
/// two threads runs as fast as the CPU allows while its stamps (read from
/// `link_clock`s) see only the simulated delays; the same seed and the same
/// sequence of calls give the same stamps.
///
/// Deadlines: `receive(buffer, d)` reads the *remaining time* `d − steady_clock::now()`
/// at the call as a virtual timeout (a `deadline::max()` is no timeout). The real
/// deadline still bounds the call when the other end keeps running in real time
/// (a hung peer thread), so nothing can hang.
///
/// An open end that is not inside `receive()` counts as running and holds virtual
/// time still: close an end (destroy it or call `reset()`) once it will not
/// receive any more, or the other end only advances at its real-time deadlines.
///
/// Messages to an end that was destroyed are dropped; an end whose peer was
/// destroyed gets `errc::peer_closed` once its queue is empty. Sending never blocks.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/time.hpp"
#include "tsync/sim/link_model.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

class simulated_endpoint;

/// The shared state of a simulated link (create with `simulated_link::make`).
class simulated_link : public std::enable_shared_from_this<simulated_link> {
 public:
  /// A link following `model` with random draws from `seed`; virtual time starts at `start_ns`.
  /// Errors: the model's `validate(model)` error.
  [[nodiscard]] static expected<std::shared_ptr<simulated_link>, std::error_code> make(sim::link_model model,
                                                                                        std::uint64_t seed,
                                                                                        std::int64_t start_ns = 0) {
    if (auto v = sim::validate(model); !v) return unexpected(make_error_code(v.error()));
    return std::shared_ptr<simulated_link>(new simulated_link(std::move(model), seed, start_ns));
  }

  /// The initiator's end (sends in the link's forward direction). Call once.
  [[nodiscard]] simulated_endpoint initiator();
  /// The responder's end (sends backward). Call once.
  [[nodiscard]] simulated_endpoint responder();

  /// Current virtual host time in ns.
  [[nodiscard]] std::int64_t now() const {
    std::lock_guard<std::mutex> lk(mu_);
    return now_;
  }

  /// Counters of the underlying link model (messages sent, lost, duplicated, ...).
  [[nodiscard]] std::uint64_t messages_sent() const {
    std::lock_guard<std::mutex> lk(mu_);
    return link_.sent();
  }
  [[nodiscard]] std::uint64_t messages_lost() const {
    std::lock_guard<std::mutex> lk(mu_);
    return link_.lost();
  }
  [[nodiscard]] std::uint64_t messages_duplicated() const {
    std::lock_guard<std::mutex> lk(mu_);
    return link_.duplicated();
  }

 private:
  friend class simulated_endpoint;
  struct in_flight {
    std::int64_t arrival;
    std::uint64_t seq;
    std::vector<std::byte> bytes;
  };
  struct side {
    std::vector<in_flight> queue;  // messages to this side, unordered
    bool waiting = false;          // inside receive()
    std::int64_t wake_at = 0;      // virtual end of that receive's timeout
    bool attached = false;
    bool closed = false;
  };

  simulated_link(sim::link_model model, std::uint64_t seed, std::int64_t start_ns)
      : link_(std::move(model), seed, start_ns), now_(start_ns) {}

  static std::int64_t add_sat(std::int64_t a, std::int64_t b) noexcept {
    const i128 s = static_cast<i128>(a) + b;
    if (s > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
    return static_cast<std::int64_t>(s);
  }

  // Index of the earliest message in q (q non-empty).
  static std::size_t earliest(const std::vector<in_flight>& q) noexcept {
    std::size_t best = 0;
    for (std::size_t i = 1; i < q.size(); ++i) {
      if (q[i].arrival < q[best].arrival || (q[i].arrival == q[best].arrival && q[i].seq < q[best].seq)) best = i;
    }
    return best;
  }

  expected<void, std::error_code> send(int from, std::span<const std::byte> bytes) {
    if (bytes.size() > max_message_size) return unexpected(make_error_code(errc::oversized));
    std::lock_guard<std::mutex> lk(mu_);
    side& peer = sides_[1 - from];
    if (peer.closed) return unexpected(make_error_code(errc::peer_closed));
    const auto d = link_.send(from == 0 ? sim::direction::forward : sim::direction::backward, now_);
    if (d.delivered) {
      peer.queue.push_back(in_flight{std::max(d.arrival, now_), seq_++, {bytes.begin(), bytes.end()}});
      if (d.duplicate) peer.queue.push_back(in_flight{std::max(*d.duplicate, now_), seq_++, {bytes.begin(), bytes.end()}});
    }
    cv_.notify_all();
    return {};
  }

  expected<std::size_t, std::error_code> receive(int me, std::vector<std::byte>& buffer, deadline d) {
    std::unique_lock<std::mutex> lk(mu_);
    side& self = sides_[me];
    side& peer = sides_[1 - me];
    std::int64_t wake = std::numeric_limits<std::int64_t>::max();
    if (d != deadline::max()) {
      const auto left = d - std::chrono::steady_clock::now();
      const std::int64_t ns = left.count() <= 0 ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      wake = add_sat(now_, ns);
    }
    self.waiting = true;
    self.wake_at = wake;
    cv_.notify_all();
    const auto done = [&](expected<std::size_t, std::error_code> r) {
      self.waiting = false;
      cv_.notify_all();
      return r;
    };
    for (;;) {
      if (!self.queue.empty()) {
        const std::size_t i = earliest(self.queue);
        if (self.queue[i].arrival <= now_) {
          buffer = std::move(self.queue[i].bytes);
          self.queue.erase(self.queue.begin() + static_cast<std::ptrdiff_t>(i));
          return done(buffer.size());
        }
      }
      if (self.queue.empty() && peer.closed) return done(unexpected(make_error_code(errc::peer_closed)));
      const bool peer_idle = peer.waiting || peer.closed || !peer.attached;
      if (peer_idle) {
        // Both ends wait: advance virtual time to the earliest event.
        std::int64_t mine = wake;
        if (!self.queue.empty()) mine = std::min(mine, self.queue[earliest(self.queue)].arrival);
        std::int64_t theirs = std::numeric_limits<std::int64_t>::max();
        if (peer.waiting) {
          theirs = peer.wake_at;
          if (!peer.queue.empty()) theirs = std::min(theirs, peer.queue[earliest(peer.queue)].arrival);
        }
        if (mine <= theirs) {
          if (mine == std::numeric_limits<std::int64_t>::max()) {
            // Nothing can ever happen in virtual time: wait for real-time changes.
          } else {
            now_ = std::max(now_, mine);
            if (!self.queue.empty() && self.queue[earliest(self.queue)].arrival <= now_) continue;
            if (now_ >= wake) return done(unexpected(make_error_code(errc::timed_out)));
            continue;
          }
        }
        // The peer's event comes first: let it run.
      }
      if (d == deadline::max()) {
        cv_.wait(lk);
      } else if (cv_.wait_until(lk, d) == std::cv_status::timeout) {
        // Real time ran out while the peer kept running (or nothing can happen).
        if (!self.queue.empty() && self.queue[earliest(self.queue)].arrival <= now_) continue;
        return done(unexpected(make_error_code(errc::timed_out)));
      }
    }
  }

  void attach(int me) {
    std::lock_guard<std::mutex> lk(mu_);
    sides_[me].attached = true;
  }
  void close(int me) {
    std::lock_guard<std::mutex> lk(mu_);
    sides_[me].closed = true;
    sides_[me].waiting = false;
    sides_[me].queue.clear();
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  sim::link_state link_;
  std::int64_t now_;
  std::uint64_t seq_ = 0;
  side sides_[2];
};

/// One end of a simulated link; satisfies `message_transport`. Move-only;
/// destroying it closes this end.
class simulated_endpoint {
 public:
  simulated_endpoint() = default;
  simulated_endpoint(simulated_endpoint&& o) noexcept : link_(std::move(o.link_)), side_(o.side_) {}
  simulated_endpoint& operator=(simulated_endpoint&& o) noexcept {
    if (this != &o) {
      reset();
      link_ = std::move(o.link_);
      side_ = o.side_;
    }
    return *this;
  }
  simulated_endpoint(const simulated_endpoint&) = delete;
  simulated_endpoint& operator=(const simulated_endpoint&) = delete;
  ~simulated_endpoint() { reset(); }

  /// Send one message: it is lost, delivered once or twice after sampled delays.
  expected<void, std::error_code> send(std::span<const std::byte> bytes, deadline) {
    if (!link_) return unexpected(make_error_code(errc::invalid_argument));
    return link_->send(side_, bytes);
  }
  /// Receive the next message that has arrived in virtual time (see the file comment).
  expected<std::size_t, std::error_code> receive(std::vector<std::byte>& buffer, deadline d) {
    if (!link_) return unexpected(make_error_code(errc::invalid_argument));
    return link_->receive(side_, buffer, d);
  }
  /// The shared link (its virtual clock).
  [[nodiscard]] const std::shared_ptr<simulated_link>& link() const noexcept { return link_; }

  /// Close this end now (the peer gets `errc::peer_closed`).
  void reset() {
    if (link_) link_->close(side_);
    link_.reset();
  }

 private:
  friend class simulated_link;
  simulated_endpoint(std::shared_ptr<simulated_link> l, int side) : link_(std::move(l)), side_(side) {
    link_->attach(side_);
  }
  std::shared_ptr<simulated_link> link_;
  int side_ = 0;
};

inline simulated_endpoint simulated_link::initiator() { return simulated_endpoint(shared_from_this(), 0); }
inline simulated_endpoint simulated_link::responder() { return simulated_endpoint(shared_from_this(), 1); }

/// A clock reading a simulated link's virtual time, shifted and drifting:
/// `reading = v + offset_ns + floor((v − start) · drift_ppb / 1e9)` for virtual host time `v`.
/// (The initiator usually reads `offset_ns = 0, drift_ppb = 0`.) Satisfies
/// `clock::clock_source` as a clock of domain `D` (the host's by default).
template <clock_domain D = host> struct link_clock {
  using domain = D;
  std::shared_ptr<simulated_link> link;
  std::int64_t offset_ns = 0;
  std::int64_t drift_ppb = 0;
  std::int64_t start = 0;
  /// The reading at virtual host time `v`.
  [[nodiscard]] std::int64_t at(std::int64_t v) const noexcept {
    const i128 d = static_cast<i128>(v - start) * drift_ppb;
    return v + offset_ns + static_cast<std::int64_t>(floor_div(d, 1000000000));
  }
  domain_time<D> now() { return at_ns<D>(now_raw()); }
  /// The same reading as a bare integer (the probe exchange's stamp).
  std::int64_t now_raw() { return at(link->now()); }
  [[nodiscard]] std::string_view name() const noexcept { return "simulated_link"; }
};

static_assert(message_transport<simulated_endpoint>);

}  // namespace tsync::transport
