#pragma once
/// \file
/// Socket helpers shared by the Unix, TCP and vsock transports: a connect and an
/// accept that respect a deadline, and a generic listener.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>
#include <utility>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/transport/fd_stream.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

namespace detail {

/// A new non-blocking, close-on-exec socket.
[[nodiscard]] inline expected<unique_fd, std::error_code> make_socket(int domain, int type) noexcept {
  const int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT) return unexpected(make_error_code(errc::unsupported));
    return unexpected(last_error());
  }
  return unique_fd(fd);
}

/// Connect a non-blocking socket before `d`. A listener whose backlog is full
/// (`EAGAIN` on Unix sockets) is retried until the deadline. Returns success once
/// connected; errors: `errc::timed_out` at `d`, the `connect`/`poll`/`SO_ERROR`
/// error otherwise (e.g. `ECONNREFUSED`).
[[nodiscard]] inline expected<void, std::error_code> connect_before(int fd, const sockaddr* addr, socklen_t len,
                                                                    deadline d) noexcept {
  for (;;) {
    if (::connect(fd, addr, len) == 0) return {};
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (std::chrono::steady_clock::now() >= d) return unexpected(make_error_code(errc::timed_out));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (errno != EINPROGRESS) return unexpected(last_error());
    break;
  }
  auto rev = wait_fd(fd, POLLOUT, d);
  if (!rev) return unexpected(rev.error());
  int err = 0;
  socklen_t elen = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) return unexpected(last_error());
  if (err != 0) return unexpected(std::error_code(err, std::system_category()));
  return {};
}

/// Accept one connection before `d` (non-blocking, close-on-exec).
[[nodiscard]] inline expected<unique_fd, std::error_code> accept_before(int listen_fd, deadline d) noexcept {
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return unique_fd(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return unexpected(last_error());
    auto rev = wait_fd(listen_fd, POLLIN, d);
    if (!rev) return unexpected(rev.error());
  }
}

}  // namespace detail

/// A listening stream socket; `accept()` yields framed `stream_transport`s.
/// Move-only; closes the socket on destruction (subclasses may also clean up).
class socket_listener {
 public:
  socket_listener() = default;
  explicit socket_listener(unique_fd fd) noexcept : fd_(std::move(fd)) {}
  socket_listener(socket_listener&&) noexcept = default;
  socket_listener& operator=(socket_listener&&) noexcept = default;

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] bool valid() const noexcept { return fd_.valid(); }

  /// Accept one peer before `d` (`errc::timed_out` if none came).
  [[nodiscard]] expected<stream_transport, std::error_code> accept(deadline d) const {
    auto fd = detail::accept_before(fd_.get(), d);
    if (!fd) return unexpected(fd.error());
    return stream_transport::adopt(std::move(*fd));
  }

  /// Accept one peer and return its raw fd (for handshakes before framing).
  [[nodiscard]] expected<unique_fd, std::error_code> accept_fd(deadline d) const {
    return detail::accept_before(fd_.get(), d);
  }

 private:
  unique_fd fd_;
};

}  // namespace tsync::transport
