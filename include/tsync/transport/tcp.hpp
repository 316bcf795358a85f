#pragma once
/// \file
/// TCP transport (framed, `TCP_NODELAY` on both ends so that small probe messages
/// are not held back by Nagle's algorithm). Addresses are numeric IPv4 or IPv6
/// literals (no name lookup, which could block past a deadline).
///
/// The protocol carries no authentication: listen on loopback or a private
/// network only, or tunnel it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/transport/fd_stream.hpp"
#include "tsync/transport/socket.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

namespace detail {

struct inet_addr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_INET;
};

/// Parse a numeric IPv4 / IPv6 literal and a port.
[[nodiscard]] inline expected<inet_addr, std::error_code> make_inet_addr(std::string_view host, std::uint16_t port) {
  inet_addr a;
  const std::string h(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    a.family = AF_INET;
    return a;
  }
  std::memset(&a.storage, 0, sizeof a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
    a.family = AF_INET6;
    return a;
  }
  return unexpected(make_error_code(errc::invalid_argument));
}

/// Set `TCP_NODELAY` on `fd`. Returns success; errors: the `setsockopt` error.
[[nodiscard]] inline expected<void, std::error_code> set_nodelay(int fd) noexcept {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) return unexpected(last_error());
  return {};
}

}  // namespace detail

/// Connect to `host:port` (numeric address) before `d`, with `TCP_NODELAY`.
[[nodiscard]] inline expected<stream_transport, std::error_code> connect_tcp(std::string_view host, std::uint16_t port,
                                                                             deadline d) {
  auto a = detail::make_inet_addr(host, port);
  if (!a) return unexpected(a.error());
  auto fd = detail::make_socket(a->family, SOCK_STREAM);
  if (!fd) return unexpected(fd.error());
  if (auto nd = detail::set_nodelay(fd->get()); !nd) return unexpected(nd.error());
  if (auto c = detail::connect_before(fd->get(), reinterpret_cast<const sockaddr*>(&a->storage), a->len, d); !c)
    return unexpected(c.error());
  return stream_transport::adopt(std::move(*fd));
}

/// A listening TCP socket; accepted connections get `TCP_NODELAY`.
class tcp_listener {
 public:
  /// Listen on `host:port` (numeric address; port 0 picks a free port, see `port()`).
  [[nodiscard]] static expected<tcp_listener, std::error_code> listen(std::string_view host, std::uint16_t port,
                                                                      int backlog = 16) {
    auto a = detail::make_inet_addr(host, port);
    if (!a) return unexpected(a.error());
    auto fd = detail::make_socket(a->family, SOCK_STREAM);
    if (!fd) return unexpected(fd.error());
    int one = 1;
    if (::setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return unexpected(last_error());
    if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&a->storage), a->len) < 0) return unexpected(last_error());
    if (::listen(fd->get(), backlog) < 0) return unexpected(last_error());
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    if (::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&bound), &blen) < 0) return unexpected(last_error());
    tcp_listener l;
    l.port_ = ntohs(a->family == AF_INET ? reinterpret_cast<const sockaddr_in*>(&bound)->sin_port
                                         : reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    l.listener_ = socket_listener(std::move(*fd));
    return l;
  }

  /// The port actually bound.
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] int fd() const noexcept { return listener_.fd(); }

  /// Accept one peer before `d` (`errc::timed_out` if none came).
  [[nodiscard]] expected<stream_transport, std::error_code> accept(deadline d) const {
    auto fd = listener_.accept_fd(d);
    if (!fd) return unexpected(fd.error());
    if (auto nd = detail::set_nodelay(fd->get()); !nd) return unexpected(nd.error());
    return stream_transport::adopt(std::move(*fd));
  }

  /// Accept one peer's raw fd before `d` (`TCP_NODELAY` set), for servers that
  /// frame it on another thread.
  [[nodiscard]] expected<unique_fd, std::error_code> accept_fd(deadline d) const {
    auto fd = listener_.accept_fd(d);
    if (!fd) return unexpected(fd.error());
    if (auto nd = detail::set_nodelay(fd->get()); !nd) return unexpected(nd.error());
    return fd;
  }

 private:
  socket_listener listener_;
  std::uint16_t port_ = 0;
};

}  // namespace tsync::transport
