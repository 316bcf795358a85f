#pragma once
/// \file
/// AF_VSOCK stream transport (framed): the usual host↔guest channel under KVM
/// (vhost-vsock) and other hypervisors. A guest is addressed by its CID; the host
/// is CID 2 (`VMADDR_CID_HOST`) from inside a guest; CID 1 (`VMADDR_CID_LOCAL`) is
/// the local loopback where the kernel has `vsock_loopback`.
///
/// Where the kernel has no vsock support, `connect_vsock`/`vsock_listener::listen`
/// fail with `errc::unsupported`; with no transport loaded, typically `ENODEV`;
/// with no listener, `ECONNREFUSED` (or `ECONNRESET`).

#include <sys/socket.h>
#include <linux/vm_sockets.h>

#include <cstdint>
#include <cstring>
#include <system_error>
#include <utility>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/transport/fd_stream.hpp"
#include "tsync/transport/socket.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

/// Well-known vsock context ids.
inline constexpr std::uint32_t vsock_cid_any = VMADDR_CID_ANY;
inline constexpr std::uint32_t vsock_cid_local = 1;  // VMADDR_CID_LOCAL
inline constexpr std::uint32_t vsock_cid_host = VMADDR_CID_HOST;

namespace detail {
[[nodiscard]] inline sockaddr_vm make_vsock_addr(std::uint32_t cid, std::uint32_t port) noexcept {
  sockaddr_vm a;
  std::memset(&a, 0, sizeof a);
  a.svm_family = AF_VSOCK;
  a.svm_cid = cid;
  a.svm_port = port;
  return a;
}
}  // namespace detail

/// Connect to vsock `cid:port` before `d`.
[[nodiscard]] inline expected<stream_transport, std::error_code> connect_vsock(std::uint32_t cid, std::uint32_t port,
                                                                               deadline d) {
  auto fd = detail::make_socket(AF_VSOCK, SOCK_STREAM);
  if (!fd) return unexpected(fd.error());
  const sockaddr_vm a = detail::make_vsock_addr(cid, port);
  if (auto c = detail::connect_before(fd->get(), reinterpret_cast<const sockaddr*>(&a), sizeof a, d); !c)
    return unexpected(c.error());
  return stream_transport::adopt(std::move(*fd));
}

/// A listening vsock socket.
class vsock_listener {
 public:
  /// Listen on `port` of `cid` (`vsock_cid_any` for every local CID).
  [[nodiscard]] static expected<vsock_listener, std::error_code> listen(std::uint32_t port,
                                                                        std::uint32_t cid = vsock_cid_any,
                                                                        int backlog = 16) {
    auto fd = detail::make_socket(AF_VSOCK, SOCK_STREAM);
    if (!fd) return unexpected(fd.error());
    const sockaddr_vm a = detail::make_vsock_addr(cid, port);
    if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) return unexpected(last_error());
    if (::listen(fd->get(), backlog) < 0) return unexpected(last_error());
    sockaddr_vm bound;
    std::memset(&bound, 0, sizeof bound);
    socklen_t blen = sizeof bound;
    if (::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&bound), &blen) < 0) return unexpected(last_error());
    vsock_listener l;
    l.port_ = bound.svm_port;
    l.listener_ = socket_listener(std::move(*fd));
    return l;
  }

  /// The port actually bound (useful with `VMADDR_PORT_ANY`).
  [[nodiscard]] std::uint32_t port() const noexcept { return port_; }
  [[nodiscard]] int fd() const noexcept { return listener_.fd(); }

  /// Accept one peer before `d`.
  [[nodiscard]] expected<stream_transport, std::error_code> accept(deadline d) const { return listener_.accept(d); }

  /// Accept one peer's raw fd before `d`.
  [[nodiscard]] expected<unique_fd, std::error_code> accept_fd(deadline d) const { return listener_.accept_fd(d); }

 private:
  socket_listener listener_;
  std::uint32_t port_ = 0;
};

}  // namespace tsync::transport
