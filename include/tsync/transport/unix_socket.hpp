#pragma once
/// \file
/// Unix-domain stream sockets (framed), and the "hybrid vsock" handshake that
/// Firecracker and Cloud Hypervisor use on the host side: the host connects to
/// the VMM's Unix socket, writes `CONNECT <port>\n` and reads `OK <assigned>\n`;
/// from then on the socket carries the guest's vsock stream on `<port>`.
///
/// Paths that start with `@` name the Linux abstract namespace (no file).

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
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

/// Fill a sockaddr_un for `path` (a leading `@` selects the abstract namespace).
[[nodiscard]] inline expected<socklen_t, std::error_code> make_unix_addr(std::string_view path, sockaddr_un& a) noexcept {
  std::memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) return unexpected(make_error_code(errc::invalid_argument));
  if (path.find('\0') != std::string_view::npos) return unexpected(make_error_code(errc::invalid_argument));
  std::memcpy(a.sun_path, path.data(), path.size());
  if (path[0] == '@') a.sun_path[0] = '\0';
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
}

/// Read one line ending in '\n' (at most `max_len` bytes, newline included), one
/// byte at a time so that nothing after the line is consumed.
[[nodiscard]] inline expected<std::string, std::error_code> read_line(int fd, std::size_t max_len, deadline d) {
  std::string line;
  for (;;) {
    char c = 0;
    const ssize_t r = ::recv(fd, &c, 1, 0);
    if (r == 1) {
      if (c == '\n') return line;
      if (line.size() + 1 >= max_len) return unexpected(make_error_code(errc::oversized));
      line.push_back(c);
      continue;
    }
    if (r == 0) return unexpected(make_error_code(errc::peer_closed));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      auto rev = wait_fd(fd, POLLIN, d);
      if (!rev) return unexpected(rev.error());
      continue;
    }
    if (errno == ECONNRESET) return unexpected(make_error_code(errc::peer_closed));
    return unexpected(last_error());
  }
}

/// Write all of `s` before `d` (no SIGPIPE). Returns success once every byte is
/// sent; errors: `errc::timed_out` at `d`, `errc::peer_closed` when the peer is
/// gone (`EPIPE`, `ECONNRESET`), `errc::io_error` for a zero-byte send, the
/// `send`/`poll` error otherwise.
[[nodiscard]] inline expected<void, std::error_code> write_all(int fd, std::string_view s, deadline d) noexcept {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (w > 0) {
      done += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto rev = wait_fd(fd, POLLOUT, d);
      if (!rev) return unexpected(rev.error());
      continue;
    }
    if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) return unexpected(make_error_code(errc::peer_closed));
    return unexpected(w < 0 ? last_error() : make_error_code(errc::io_error));
  }
  return {};
}

/// Parse "<word> <u32>" exactly (single spaces, decimal digits only).
[[nodiscard]] inline expected<std::uint32_t, std::error_code> parse_word_port(std::string_view line,
                                                                              std::string_view word) noexcept {
  if (line.size() <= word.size() + 1 || line.substr(0, word.size()) != word || line[word.size()] != ' ')
    return unexpected(make_error_code(errc::protocol_error));
  const std::string_view digits = line.substr(word.size() + 1);
  if (digits.size() > 10) return unexpected(make_error_code(errc::protocol_error));
  for (char c : digits) {
    if (c < '0' || c > '9') return unexpected(make_error_code(errc::protocol_error));
  }
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc{} || p != digits.data() + digits.size()) return unexpected(make_error_code(errc::protocol_error));
  return v;
}

/// Remove the socket file at `path` when nobody listens on it (a connect is
/// refused). Returns success once removed (or when there is no file); errors:
/// `EADDRINUSE` when the file is not a socket or a listener answers, the error of
/// `lstat`/`unlink`/`socket` otherwise, `errc::invalid_argument` for a path that
/// does not fit a `sockaddr_un`.
[[nodiscard]] inline expected<void, std::error_code> remove_stale_socket(std::string_view path) {
  const std::string p(path);
  struct stat st {};
  if (::lstat(p.c_str(), &st) < 0) {
    if (errno == ENOENT) return {};
    return unexpected(last_error());
  }
  if (!S_ISSOCK(st.st_mode)) return unexpected(std::make_error_code(std::errc::address_in_use));
  sockaddr_un a{};
  auto len = make_unix_addr(path, a);
  if (!len) return unexpected(len.error());
  auto fd = make_socket(AF_UNIX, SOCK_STREAM);
  if (!fd) return unexpected(fd.error());
  const int r = ::connect(fd->get(), reinterpret_cast<const sockaddr*>(&a), *len);
  // EAGAIN: a listener with a full backlog is alive; EINPROGRESS does not happen on AF_UNIX.
  if (r == 0 || errno != ECONNREFUSED) return unexpected(std::make_error_code(std::errc::address_in_use));
  if (::unlink(p.c_str()) < 0 && errno != ENOENT) return unexpected(last_error());
  return {};
}

}  // namespace detail

/// Connect to a Unix stream socket at `path` before `d`.
[[nodiscard]] inline expected<stream_transport, std::error_code> connect_unix(std::string_view path, deadline d) {
  sockaddr_un a{};
  auto len = detail::make_unix_addr(path, a);
  if (!len) return unexpected(len.error());
  auto fd = detail::make_socket(AF_UNIX, SOCK_STREAM);
  if (!fd) return unexpected(fd.error());
  if (auto c = detail::connect_before(fd->get(), reinterpret_cast<const sockaddr*>(&a), *len, d); !c)
    return unexpected(c.error());
  return stream_transport::adopt(std::move(*fd));
}

/// A listening Unix stream socket. The socket file it created is removed on destruction.
class unix_listener : public socket_listener {
 public:
  unix_listener() = default;
  unix_listener(unix_listener&& o) noexcept : socket_listener(std::move(o)), path_(std::exchange(o.path_, {})) {}
  unix_listener& operator=(unix_listener&& o) noexcept {
    if (this != &o) {
      cleanup();
      socket_listener::operator=(std::move(o));
      path_ = std::exchange(o.path_, {});
    }
    return *this;
  }
  unix_listener(const unix_listener&) = delete;
  unix_listener& operator=(const unix_listener&) = delete;
  ~unix_listener() { cleanup(); }

  /// Bind and listen on `path`. An existing file there is an error (`EADDRINUSE`)
  /// unless `replace_stale` is set and the file is a socket nobody listens on
  /// (connecting to it is refused): such a file, left behind by a killed process,
  /// is removed and the bind retried once. A regular file, a directory, or a
  /// socket with a live listener is never touched.
  [[nodiscard]] static expected<unix_listener, std::error_code> listen(std::string_view path, int backlog = 16,
                                                                       bool replace_stale = false) {
    sockaddr_un a{};
    auto len = detail::make_unix_addr(path, a);
    if (!len) return unexpected(len.error());
    auto fd = detail::make_socket(AF_UNIX, SOCK_STREAM);
    if (!fd) return unexpected(fd.error());
    if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&a), *len) < 0) {
      const std::error_code ec = last_error();
      if (!replace_stale || ec != std::errc::address_in_use || path[0] == '@') return unexpected(ec);
      if (auto rm = detail::remove_stale_socket(path); !rm) return unexpected(rm.error());
      if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&a), *len) < 0) return unexpected(last_error());
    }
    unix_listener l;
    l.socket_listener::operator=(socket_listener(std::move(*fd)));
    if (path[0] != '@') l.path_ = std::string(path);
    if (::listen(l.fd(), backlog) < 0) return unexpected(last_error());
    return l;
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  void cleanup() noexcept {
    if (!path_.empty() && valid()) ::unlink(path_.c_str());
    path_.clear();
  }
  std::string path_;
};

/// Longest handshake line accepted (newline included).
inline constexpr std::size_t hybrid_vsock_max_line = 64;

/// A hybrid-vsock connection: the framed transport and the port the VMM assigned.
struct hybrid_vsock_connection {
  stream_transport transport;
  std::uint32_t assigned_port = 0;
};

/// Connect to a Firecracker / Cloud Hypervisor vsock Unix socket at `uds_path` and
/// ask for guest port `port` (`CONNECT <port>\n`, answer `OK <assigned>\n`).
/// Errors: those of `connect_unix`, `errc::protocol_error` for any other answer,
/// `errc::oversized` for an answer line longer than `hybrid_vsock_max_line`,
/// `errc::peer_closed` when the VMM closes (no listener on that guest port),
/// `errc::timed_out` at `d`.
[[nodiscard]] inline expected<hybrid_vsock_connection, std::error_code> connect_hybrid_vsock(std::string_view uds_path,
                                                                                             std::uint32_t port,
                                                                                             deadline d) {
  sockaddr_un a{};
  auto len = detail::make_unix_addr(uds_path, a);
  if (!len) return unexpected(len.error());
  auto fd = detail::make_socket(AF_UNIX, SOCK_STREAM);
  if (!fd) return unexpected(fd.error());
  if (auto c = detail::connect_before(fd->get(), reinterpret_cast<const sockaddr*>(&a), *len, d); !c)
    return unexpected(c.error());
  const std::string req = "CONNECT " + std::to_string(port) + "\n";
  if (auto w = detail::write_all(fd->get(), req, d); !w) return unexpected(w.error());
  auto line = detail::read_line(fd->get(), hybrid_vsock_max_line, d);
  if (!line) return unexpected(line.error());
  auto assigned = detail::parse_word_port(*line, "OK");
  if (!assigned) return unexpected(assigned.error());
  auto t = stream_transport::adopt(std::move(*fd));
  if (!t) return unexpected(t.error());
  return hybrid_vsock_connection{std::move(*t), *assigned};
}

/// The server side of the hybrid-vsock handshake (what a VMM does), for tests and
/// for programs that stand in for a VMM.
class hybrid_vsock_acceptor {
 public:
  /// One accepted connection: the guest port the client asked for and the port
  /// this acceptor assigned (counting up from `first_assigned_port`).
  struct accepted {
    stream_transport transport;
    std::uint32_t requested_port = 0;
    std::uint32_t assigned_port = 0;
  };

  [[nodiscard]] static expected<hybrid_vsock_acceptor, std::error_code> listen(
      std::string_view path, std::uint32_t first_assigned_port = 1073741824u, bool replace_stale = false) {
    auto l = unix_listener::listen(path, 16, replace_stale);
    if (!l) return unexpected(l.error());
    hybrid_vsock_acceptor h;
    h.listener_ = std::move(*l);
    h.next_port_ = first_assigned_port;
    return h;
  }

  /// Accept one client, read its `CONNECT <port>\n` and answer `OK <assigned>\n`.
  /// A malformed request is answered by closing the connection and yields
  /// `errc::protocol_error` (or `errc::oversized` for an over-long line).
  /// The handshake runs on the caller's thread: a server that must not be held up
  /// by silent clients calls `accept_fd` and `hybrid_vsock_handshake` on another.
  [[nodiscard]] expected<accepted, std::error_code> accept(deadline d) {
    auto fd = listener_.accept_fd(d);
    if (!fd) return unexpected(fd.error());
    return hybrid_vsock_handshake(std::move(*fd), next_port_++, d);
  }

  /// Accept one client without reading its request (see `hybrid_vsock_handshake`).
  [[nodiscard]] expected<unique_fd, std::error_code> accept_fd(deadline d) const { return listener_.accept_fd(d); }

  /// The port the next handshake assigns (counts up on every call).
  [[nodiscard]] std::uint32_t take_port() noexcept { return next_port_++; }

  /// The VMM side of the handshake on an accepted fd: read `CONNECT <port>\n`
  /// before `d`, answer `OK <assigned>\n`, then frame the stream.
  [[nodiscard]] static expected<accepted, std::error_code> hybrid_vsock_handshake(unique_fd fd, std::uint32_t assigned,
                                                                                 deadline d) {
    auto line = detail::read_line(fd.get(), hybrid_vsock_max_line, d);
    if (!line) return unexpected(line.error());
    auto port = detail::parse_word_port(*line, "CONNECT");
    if (!port) return unexpected(port.error());
    if (auto w = detail::write_all(fd.get(), "OK " + std::to_string(assigned) + "\n", d); !w)
      return unexpected(w.error());
    auto t = stream_transport::adopt(std::move(fd));
    if (!t) return unexpected(t.error());
    return accepted{std::move(*t), *port, assigned};
  }

  [[nodiscard]] const unix_listener& listener() const noexcept { return listener_; }

 private:
  unix_listener listener_;
  std::uint32_t next_port_ = 0;
};

}  // namespace tsync::transport
