#pragma once
/// \file
/// Transports by address: the one grammar of transport specs (docs/protocol.md,
/// "Transport addresses"), opening the initiator's side with retry while the
/// responder is not there yet, and the responder's listener whose accept is split
/// from the per-connection handshake (so a silent client cannot hold up the
/// accept loop).
///
/// | spec | initiator | responder |
/// |---|---|---|
/// | `unix:PATH` | connect to the Unix socket PATH (`@name`: abstract) | listen on PATH |
/// | `tcp:HOST:PORT` | connect (numeric IPv4/IPv6 HOST) | listen |
/// | `vsock:CID:PORT` | connect to CID | listen on CID (`any`: every local CID) |
/// | `hybrid:PATH:PORT` | Firecracker / Cloud Hypervisor host socket: `CONNECT PORT` | stand in for the VMM |
/// | `fifo:BASE` | write BASE.in, read BASE.out | read BASE.in, write BASE.out |
/// | `chardev:PATH` | a virtio-serial port | the other end |

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/io/text.hpp"
#include "tsync/transport/fd_stream.hpp"
#include "tsync/transport/fifo.hpp"
#include "tsync/transport/tcp.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/transport/unix_socket.hpp"
#include "tsync/transport/vsock.hpp"

namespace tsync::inline TSYNC_ABI::transport {

/// A parsed transport address.
struct spec {
  enum class kind { unix_socket, tcp, vsock, hybrid, fifo, chardev };
  kind k = kind::unix_socket;
  std::string path;        ///< unix, hybrid (the VMM's socket), fifo (base name), chardev
  std::string host;        ///< tcp
  std::uint32_t port = 0;  ///< tcp (<= 65535), vsock, hybrid
  std::uint32_t cid = 0;   ///< vsock (`vsock_cid_any` for `any`)
  /// Whether the transport has connections (unix, tcp, vsock, hybrid) rather than one channel.
  [[nodiscard]] bool connection_oriented() const noexcept { return k != kind::fifo && k != kind::chardev; }
};

namespace detail {
[[nodiscard]] inline bool split_last_port(std::string_view rest, std::string& left, std::uint32_t& port) {
  const auto c = rest.rfind(':');
  if (c == std::string_view::npos || c == 0) return false;
  left = std::string(rest.substr(0, c));
  return ::tsync::detail::parse_decimal(rest.substr(c + 1), port) == errc::ok;
}
}  // namespace detail

/// Parse `KIND:ADDRESS` (see the table above). Errors carry `errc::invalid_argument`
/// and a message naming the expected form.
[[nodiscard]] inline expected<spec, ::tsync::text_error> parse_spec(std::string_view s) {
  auto bad = [](std::string m) { return unexpected(::tsync::text_error{errc::invalid_argument, 0, std::move(m)}); };
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) return bad("expected KIND:ADDRESS");
  const std::string_view kind = s.substr(0, colon), rest = s.substr(colon + 1);
  spec t;
  if (kind == "unix" || kind == "fifo" || kind == "chardev") {
    if (rest.empty()) return bad("empty path");
    t.k = kind == "unix" ? spec::kind::unix_socket : kind == "fifo" ? spec::kind::fifo : spec::kind::chardev;
    t.path = std::string(rest);
    return t;
  }
  if (kind == "tcp") {
    t.k = spec::kind::tcp;
    if (!detail::split_last_port(rest, t.host, t.port) || t.port > 65535) return bad("expected tcp:HOST:PORT");
    return t;
  }
  if (kind == "hybrid") {
    t.k = spec::kind::hybrid;
    if (!detail::split_last_port(rest, t.path, t.port)) return bad("expected hybrid:/path/to/uds:PORT");
    return t;
  }
  if (kind == "vsock") {
    t.k = spec::kind::vsock;
    std::string cid;
    if (!detail::split_last_port(rest, cid, t.port)) return bad("expected vsock:CID:PORT");
    if (cid == "any") {
      t.cid = vsock_cid_any;
    } else if (::tsync::detail::parse_decimal(std::string_view(cid), t.cid) != errc::ok) {
      return bad("expected vsock:CID:PORT (CID a number or 'any')");
    }
    return t;
  }
  return bad("unknown transport kind '" + std::string(kind) + "' (unix, tcp, vsock, hybrid, fifo, chardev)");
}

/// One attempt to open the initiator's side of `s` before `d`.
[[nodiscard]] inline expected<stream_transport, std::error_code> open(const spec& s, deadline d) {
  switch (s.k) {
    case spec::kind::unix_socket: return connect_unix(s.path, d);
    case spec::kind::tcp: return connect_tcp(s.host, static_cast<std::uint16_t>(s.port), d);
    case spec::kind::vsock: return connect_vsock(s.cid, s.port, d);
    case spec::kind::hybrid: {
      auto h = connect_hybrid_vsock(s.path, s.port, d);
      if (!h) return unexpected(h.error());
      return std::move(h->transport);
    }
    case spec::kind::fifo: return open_fifo_pair(s.path + ".out", s.path + ".in", d);
    case spec::kind::chardev: return open_chardev(s.path);
  }
  return unexpected(make_error_code(errc::invalid_argument));
}

/// Whether an `open` error means "the responder is not there yet" (worth retrying).
[[nodiscard]] inline bool not_there_yet(const std::error_code& ec) noexcept {
  return ec == std::errc::no_such_file_or_directory || ec == std::errc::connection_refused ||
         ec == make_error_code(errc::timed_out) || ec == std::errc::no_such_device_or_address;
}

/// Open `s`, retrying every `pause` while the responder is not there yet, until
/// `until` or until `cancelled()` (if given) says to give up. Each attempt is
/// bounded by one second.
[[nodiscard]] inline expected<stream_transport, std::error_code> open_with_retry(
    const spec& s, deadline until, const std::function<bool()>& cancelled = {},
    std::chrono::nanoseconds pause = std::chrono::milliseconds(20)) {
  for (;;) {
    auto t = open(s, std::min(until, after(std::chrono::seconds(1))));
    if (t || std::chrono::steady_clock::now() >= until || (cancelled && cancelled())) return t;
    if (!not_there_yet(t.error())) return t;
    std::this_thread::sleep_for(pause);
  }
}

/// An accepted connection whose handshake has not run yet (`finish` runs it).
class pending_connection {
 public:
  pending_connection() = default;
  pending_connection(unique_fd fd, bool hybrid, std::uint32_t assigned) noexcept
      : fd_(std::move(fd)), hybrid_(hybrid), assigned_(assigned) {}

  /// Run the handshake before `d` (hybrid: read `CONNECT`, answer `OK`) and frame the stream.
  [[nodiscard]] expected<stream_transport, std::error_code> finish(deadline d) && {
    if (!hybrid_) return stream_transport::adopt(std::move(fd_));
    auto a = hybrid_vsock_acceptor::hybrid_vsock_handshake(std::move(fd_), assigned_, d);
    if (!a) return unexpected(a.error());
    return std::move(a->transport);
  }

 private:
  unique_fd fd_;
  bool hybrid_ = false;
  std::uint32_t assigned_ = 0;
};

/// The responder's side of a connection-oriented spec.
class listener {
 public:
  /// Listen on `s` (connection-oriented kinds only; others: `errc::unsupported`).
  /// A Unix path (also hybrid's) that holds a stale socket file nobody listens on
  /// is replaced; any other existing file is `EADDRINUSE`.
  [[nodiscard]] static expected<listener, std::error_code> listen(const spec& s, int backlog = 64) {
    listener l;
    switch (s.k) {
      case spec::kind::unix_socket: {
        auto x = unix_listener::listen(s.path, backlog, /*replace_stale=*/true);
        if (!x) return unexpected(x.error());
        l.l_ = std::move(*x);
        return l;
      }
      case spec::kind::tcp: {
        auto x = tcp_listener::listen(s.host, static_cast<std::uint16_t>(s.port), backlog);
        if (!x) return unexpected(x.error());
        l.l_ = std::move(*x);
        return l;
      }
      case spec::kind::vsock: {
        auto x = vsock_listener::listen(s.port, s.cid, backlog);
        if (!x) return unexpected(x.error());
        l.l_ = std::move(*x);
        return l;
      }
      case spec::kind::hybrid: {
        auto x = hybrid_vsock_acceptor::listen(s.path, 1073741824u, /*replace_stale=*/true);
        if (!x) return unexpected(x.error());
        l.l_ = std::move(*x);
        return l;
      }
      default: break;
    }
    return unexpected(make_error_code(errc::unsupported));
  }

  /// Accept one connection before `d` without running its handshake.
  [[nodiscard]] expected<pending_connection, std::error_code> accept(deadline d) {
    return std::visit(
        [&](auto& x) -> expected<pending_connection, std::error_code> {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, std::monostate>) {
            return unexpected(make_error_code(errc::invalid_argument));
          } else {
            auto fd = x.accept_fd(d);
            if (!fd) return unexpected(fd.error());
            if constexpr (std::is_same_v<X, hybrid_vsock_acceptor>) {
              return pending_connection(std::move(*fd), true, x.take_port());
            } else {
              return pending_connection(std::move(*fd), false, 0);
            }
          }
        },
        l_);
  }

  /// The listening fd (for poll), or -1.
  [[nodiscard]] int fd() const noexcept {
    return std::visit(
        [](const auto& x) -> int {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, std::monostate>) return -1;
          else if constexpr (std::is_same_v<X, hybrid_vsock_acceptor>) return x.listener().fd();
          else return x.fd();
        },
        l_);
  }

 private:
  std::variant<std::monostate, unix_listener, tcp_listener, vsock_listener, hybrid_vsock_acceptor> l_;
};

}  // namespace tsync::transport
