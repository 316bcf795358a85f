#pragma once
/// \file
/// A connected pair of framed Unix stream sockets: both ends of a transport in
/// one call, for a responder in a thread or in a forked child.

#include <sys/socket.h>

#include <system_error>
#include <utility>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/transport/fd_stream.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

/// Two connected transports (`AF_UNIX`, `SOCK_STREAM`, close-on-exec).
[[nodiscard]] inline expected<std::pair<stream_transport, stream_transport>, std::error_code> make_socketpair() {
  int fds[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) return unexpected(last_error());
  unique_fd a(fds[0]);
  unique_fd b(fds[1]);
  auto ta = stream_transport::adopt(std::move(a));
  if (!ta) return unexpected(ta.error());
  auto tb = stream_transport::adopt(std::move(b));
  if (!tb) return unexpected(tb.error());
  return std::pair<stream_transport, stream_transport>(std::move(*ta), std::move(*tb));
}

}  // namespace tsync::transport
