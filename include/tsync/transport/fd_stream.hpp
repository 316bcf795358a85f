#pragma once
/// \file
/// File-descriptor plumbing shared by the POSIX transports: an owning fd
/// (`unique_fd`), deadline-aware waiting, and `stream_transport`, which frames
/// messages over a byte stream (a socket, a pair of FIFOs or a character device).
///
/// Framing: each message is sent as a 4-byte little-endian length followed by the
/// message bytes. A frame length above `max_message_size` makes `receive()` fail
/// with `errc::oversized`; the stream can no longer be trusted to be in step
/// (there is no resynchronisation marker), so the transport is then *broken*:
/// every later operation fails with `errc::io_error`. The same happens when a
/// `send()` times out after writing part of a frame. A `receive()` that times out
/// keeps the bytes of a partly received frame, so the next call continues it.
///
/// Failure mapping: end of stream, `EPIPE`, `ECONNRESET` and (for terminals) `EIO`
/// are `errc::peer_closed`; a deadline is `errc::timed_out`; other OS failures are
/// `std::system_category()` codes. Writes never raise `SIGPIPE` (sockets use
/// `MSG_NOSIGNAL`; other fds block the signal in the calling thread for the write
/// and discard it). `EINTR` is retried with the remaining time.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

/// An owning file descriptor (closed on destruction; move-only).
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Give up ownership.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  /// Close the current fd (if any) and own `fd`.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// `std::error_code` for the current `errno`.
[[nodiscard]] inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

namespace detail {

/// Milliseconds left until `d` for poll(): -1 for "no deadline", 0 when passed.
/// Rounded up so that a wait never ends before the deadline.
[[nodiscard]] inline int poll_timeout_ms(deadline d) noexcept {
  if (d == deadline::max()) return -1;
  const auto now = std::chrono::steady_clock::now();
  if (d <= now) return 0;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(d - now).count();
  return left > 1000000 ? 1000000 : static_cast<int>(left);
}

/// Wait until `fd` reports one of `events` (or an error/hang-up) or the deadline.
/// Returns the revents, or `errc::timed_out`.
[[nodiscard]] inline expected<short, std::error_code> wait_fd(int fd, short events, deadline d) noexcept {
  for (;;) {
    pollfd p{fd, events, 0};
    const int ms = poll_timeout_ms(d);
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return p.revents;
    if (r == 0) {
      if (ms == 0 || std::chrono::steady_clock::now() >= d) return unexpected(make_error_code(errc::timed_out));
      continue;  // woke early (rounding): wait for the rest
    }
    if (errno == EINTR) continue;
    return unexpected(last_error());
  }
}

/// Set `O_NONBLOCK` on `fd` (kept if already set). Returns success; errors: the
/// `fcntl` error (e.g. `EBADF`).
[[nodiscard]] inline expected<void, std::error_code> set_nonblocking(int fd) noexcept {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return unexpected(last_error());
  if ((fl & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return unexpected(last_error());
  return {};
}

[[nodiscard]] inline bool is_socket(int fd) noexcept {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/// write() that never raises SIGPIPE in this process: the signal is blocked in
/// this thread around the write and a SIGPIPE it caused is consumed.
[[nodiscard]] inline ssize_t write_no_sigpipe(int fd, const void* data, std::size_t n) noexcept {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  const ssize_t r = ::write(fd, data, n);
  const int saved = errno;
  if (r < 0 && saved == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = saved;
  return r;
}

}  // namespace detail

/// A message transport over a byte stream, framed with a 4-byte little-endian
/// length. Satisfies `message_transport`. Reads from `read_fd()` and writes to
/// `write_fd()` (the same fd for sockets and character devices).
class stream_transport {
 public:
  stream_transport() = default;
  stream_transport(stream_transport&&) noexcept = default;
  stream_transport& operator=(stream_transport&&) noexcept = default;

  /// Adopt one bidirectional fd (a connected stream socket, a character device,
  /// a pseudo-terminal). The fd is made non-blocking.
  [[nodiscard]] static expected<stream_transport, std::error_code> adopt(unique_fd fd) {
    if (!fd) return unexpected(make_error_code(errc::invalid_argument));
    if (auto nb = detail::set_nonblocking(fd.get()); !nb) return unexpected(nb.error());
    stream_transport t;
    t.socket_ = detail::is_socket(fd.get());
    t.rfd_ = std::move(fd);
    t.init_buffers();
    return t;
  }
  /// Adopt a read fd and a separate write fd (a pair of FIFOs or pipes).
  [[nodiscard]] static expected<stream_transport, std::error_code> adopt(unique_fd read_fd, unique_fd write_fd) {
    if (!read_fd || !write_fd) return unexpected(make_error_code(errc::invalid_argument));
    if (auto nb = detail::set_nonblocking(read_fd.get()); !nb) return unexpected(nb.error());
    if (auto nb = detail::set_nonblocking(write_fd.get()); !nb) return unexpected(nb.error());
    stream_transport t;
    t.socket_ = detail::is_socket(write_fd.get());
    t.rfd_ = std::move(read_fd);
    t.wfd_ = std::move(write_fd);
    t.init_buffers();
    return t;
  }

  [[nodiscard]] int read_fd() const noexcept { return rfd_.get(); }
  [[nodiscard]] int write_fd() const noexcept { return wfd_ ? wfd_.get() : rfd_.get(); }
  [[nodiscard]] bool valid() const noexcept { return rfd_.valid(); }
  /// True once the framing can no longer be trusted (see the file comment).
  [[nodiscard]] bool broken() const noexcept { return broken_; }

  /// Send one message as one frame before `d`.
  ///
  /// Errors: `errc::oversized` (message above `max_message_size`, nothing sent),
  /// `errc::timed_out` (transport broken if part of the frame went out),
  /// `errc::peer_closed`, `errc::io_error` on a broken transport, OS errors.
  expected<void, std::error_code> send(std::span<const std::byte> bytes, deadline d) {
    if (!rfd_) return unexpected(make_error_code(errc::invalid_argument));
    if (broken_) return unexpected(make_error_code(errc::io_error));
    if (bytes.size() > max_message_size) return unexpected(make_error_code(errc::oversized));
    const std::size_t total = 4 + bytes.size();
    out_.resize(total);
    const auto n = static_cast<std::uint32_t>(bytes.size());
    for (int i = 0; i < 4; ++i) out_[static_cast<std::size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xFFu);
    if (!bytes.empty()) std::memcpy(out_.data() + 4, bytes.data(), bytes.size());
    std::size_t done = 0;
    const int fd = write_fd();
    while (done < total) {
      ssize_t w;
      if (socket_) {
        w = ::send(fd, out_.data() + done, total - done, MSG_NOSIGNAL);
      } else {
        w = detail::write_no_sigpipe(fd, out_.data() + done, total - done);
      }
      if (w > 0) {
        done += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        auto rev = detail::wait_fd(fd, POLLOUT, d);
        if (!rev) {
          if (done > 0) broken_ = true;
          return unexpected(rev.error());
        }
        continue;
      }
      if (w < 0 && (errno == EPIPE || errno == ECONNRESET || errno == EIO || errno == ENOTCONN)) {
        broken_ = done > 0 || broken_;
        return unexpected(make_error_code(errc::peer_closed));
      }
      if (done > 0) broken_ = true;
      return unexpected(w < 0 ? last_error() : make_error_code(errc::io_error));
    }
    return {};
  }

  /// Receive one whole message into `buffer` (resized to it) before `d`.
  ///
  /// Errors: `errc::timed_out` (partial frame kept), `errc::peer_closed` (end of
  /// stream, also in the middle of a frame), `errc::oversized` (frame length above
  /// `max_message_size`; transport broken), `errc::io_error` on a broken transport, OS errors.
  expected<std::size_t, std::error_code> receive(std::vector<std::byte>& buffer, deadline d) {
    if (!rfd_) return unexpected(make_error_code(errc::invalid_argument));
    if (broken_) return unexpected(make_error_code(errc::io_error));
    for (;;) {
      const std::size_t avail = end_ - begin_;
      if (avail >= 4) {
        const std::byte* h = in_.data() + begin_;
        std::uint32_t len = 0;
        for (int i = 0; i < 4; ++i) len |= std::to_integer<std::uint32_t>(h[i]) << (8 * i);
        if (len > max_message_size) {
          broken_ = true;
          return unexpected(make_error_code(errc::oversized));
        }
        const std::size_t need = 4 + static_cast<std::size_t>(len);
        if (avail >= need) {
          buffer.assign(h + 4, h + 4 + len);
          begin_ += need;
          if (begin_ == end_) begin_ = end_ = 0;
          return static_cast<std::size_t>(len);
        }
        // A frame larger than the buffer: grow it once, to what the frame needs
        // (at most one whole frame at the limit).
        if (need > in_.size()) in_.resize(std::max(need, std::min(2 * in_.size(), max_buffer_size)));
      }
      if (eof_) return unexpected(make_error_code(errc::peer_closed));
      if (begin_ > 0 && (end_ == in_.size() || begin_ > in_.size() / 2)) {
        std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == in_.size()) {  // cannot happen: a frame that fits has been returned above
        broken_ = true;
        return unexpected(make_error_code(errc::io_error));
      }
      // Wait first, read second: a FIFO whose writer has not opened yet reads as
      // end-of-file, while poll() waits for that writer (and reports a hang-up
      // only once a writer has come and gone).
      if (!readable_) {
        auto rev = detail::wait_fd(rfd_.get(), POLLIN, d);
        if (!rev) return unexpected(rev.error());
      }
      const ssize_t r = ::read(rfd_.get(), in_.data() + end_, in_.size() - end_);
      readable_ = false;
      if (r > 0) {
        end_ += static_cast<std::size_t>(r);
        // A full buffer may leave more to read without waiting.
        readable_ = end_ == in_.size();
        continue;
      }
      if (r == 0) {
        eof_ = true;
        continue;
      }
      if (errno == EINTR) {
        readable_ = true;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) continue;  // spurious wake-up: wait again
      if (errno == ECONNRESET || errno == EIO || errno == ENOTCONN) {
        eof_ = true;
        continue;
      }
      return unexpected(last_error());
    }
  }

 private:
  /// The receive buffer starts at this size (probe messages are a few dozen
  /// bytes): a connection costs no 128 KiB it never uses.
  static constexpr std::size_t initial_buffer_size = 4096;
  /// ... and grows, for a large frame, up to one whole frame at the limit.
  static constexpr std::size_t max_buffer_size = 4 + max_message_size;
  void init_buffers() {
    in_.resize(initial_buffer_size);
    begin_ = end_ = 0;
  }
  unique_fd rfd_;
  unique_fd wfd_;  // empty when rfd_ is bidirectional
  bool socket_ = false;
  bool broken_ = false;
  bool eof_ = false;
  bool readable_ = false;  // read again without waiting first
  std::vector<std::byte> in_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::vector<std::byte> out_;
};

static_assert(message_transport<stream_transport>);

}  // namespace tsync::transport
