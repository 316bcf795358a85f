// libFuzzer target: the stream framing of the wire protocol (4-byte little-endian
// length, then the message) -- what every socket, FIFO and character-device
// transport reads. The input is written to one end of a socketpair, that end is
// closed, and a stream_transport reads the other end.
//
// Properties checked on every input:
// - receive() yields only whole frames within max_message_size, each exactly the
//   bytes that followed its length in the input, then a clean error (end of
//   stream, or an oversized length);
// - whatever a frame decodes to re-encodes to the same bytes and fits the limits.
//
// Each input costs a socketpair and a handful of system calls, so this target
// runs slower than the in-memory `message` target; -max_len up to the default
// socket buffer (about 200 KiB) keeps the write from blocking.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <system_error>
#include <vector>

#include "tsync/probe/message.hpp"
#include "tsync/transport/fd_stream.hpp"
#include "wire_checks.hpp"

using tsync_fuzz::check;
using tsync_fuzz::check_decoded;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) return 0;
  std::size_t done = 0;
  while (done < size) {  // a full socket buffer (EAGAIN) ends the stream early
    const ssize_t w = ::write(fds[0], data + done, size - done);
    if (w <= 0) break;
    done += static_cast<std::size_t>(w);
  }
  ::close(fds[0]);
  auto t = tsync::transport::stream_transport::adopt(tsync::transport::unique_fd(fds[1]));
  if (!t) return 0;
  std::vector<std::byte> buf;
  std::size_t consumed = 0;
  for (;;) {
    auto r = t->receive(buf, tsync::transport::deadline::max());
    if (!r) {
      // End of the input, or an oversized frame: nothing else is possible here.
      check(r.error() == tsync::make_error_code(tsync::errc::peer_closed) ||
            r.error() == tsync::make_error_code(tsync::errc::oversized));
      break;
    }
    check(*r == buf.size() && *r <= tsync::transport::max_message_size);
    consumed += 4 + *r;
    check(consumed <= done);
    check(std::equal(buf.begin(), buf.end(), in.begin() + static_cast<std::ptrdiff_t>(consumed - *r)));
    check_decoded(buf);
  }
  return 0;
}
