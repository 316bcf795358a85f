#pragma once
// Minimal "archetype" types that model tsync's concepts with nothing more than
// the named requirements (docs/concepts.md). Algorithms instantiated with them
// prove that they ask no more of their arguments than the concepts say.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsync/clock/clock_source.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/transport/transport.hpp"

namespace tsync::test {

/// A clock_source archetype: a counter that advances by `step` on every read.
/// No copy, no move, no default construction beyond what the concept needs.
class clock_archetype {
 public:
  explicit clock_archetype(std::int64_t start, std::int64_t step) : t_(start), step_(step) {}
  clock_archetype(const clock_archetype&) = delete;
  clock_archetype& operator=(const clock_archetype&) = delete;
  using domain = tsync::host;
  tsync::domain_time<tsync::host> now() { return tsync::at_ns<tsync::host>(now_raw()); }
  std::int64_t now_raw() {
    std::lock_guard lk(m_);
    t_ += step_;
    return t_;
  }
  std::string_view name() const { return "archetype"; }

 private:
  std::mutex m_;
  std::int64_t t_;
  std::int64_t step_;
};

/// One direction of an in-memory message queue.
struct message_queue {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::vector<std::byte>> q;
  bool closed = false;
};

/// A message_transport archetype: exactly `send` and `receive`, nothing else
/// (not copyable, not movable), over two in-memory queues.
class transport_archetype {
 public:
  transport_archetype(std::shared_ptr<message_queue> out, std::shared_ptr<message_queue> in)
      : out_(std::move(out)), in_(std::move(in)) {}
  transport_archetype(const transport_archetype&) = delete;
  transport_archetype& operator=(const transport_archetype&) = delete;
  ~transport_archetype() {
    std::lock_guard lk(out_->m);
    out_->closed = true;
    out_->cv.notify_all();
  }

  expected<void, std::error_code> send(std::span<const std::byte> bytes, transport::deadline) {
    std::lock_guard lk(out_->m);
    if (out_->closed) return unexpected(make_error_code(errc::peer_closed));
    out_->q.emplace_back(bytes.begin(), bytes.end());
    out_->cv.notify_all();
    return {};
  }
  expected<std::size_t, std::error_code> receive(std::vector<std::byte>& buf, transport::deadline d) {
    std::unique_lock lk(in_->m);
    if (!in_->cv.wait_until(lk, d, [&] { return !in_->q.empty() || in_->closed; }))
      return unexpected(make_error_code(errc::timed_out));
    if (in_->q.empty()) return unexpected(make_error_code(errc::peer_closed));
    buf = std::move(in_->q.front());
    in_->q.pop_front();
    return buf.size();
  }
  /// Close the sending direction (the peer's receive then reports peer_closed).
  void close() {
    std::lock_guard lk(out_->m);
    out_->closed = true;
    out_->cv.notify_all();
  }

 private:
  std::shared_ptr<message_queue> out_;
  std::shared_ptr<message_queue> in_;
};

static_assert(clock::clock_source<clock_archetype>);
static_assert(transport::message_transport<transport_archetype>);

}  // namespace tsync::test
