// libFuzzer target: the probe wire decoder, and the stream framing in front of it.
//
// Properties checked on every input:
// - decode() never crashes, never reads out of bounds, never hangs;
// - whatever decodes re-encodes to exactly the input bytes (the codec is canonical),
//   and what it decodes to satisfies the documented limits;
// - the framed stream transport fed the same bytes yields only whole frames within
//   max_message_size, each of which goes through decode() too, and then a clean error.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "tsync/probe/message.hpp"
#include "tsync/transport/fd_stream.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_decoded(std::span<const std::byte> in) {
  auto m = tsync::probe::decode(in);
  if (!m) return;
  using namespace tsync::probe;
  auto again = encode_to_vector(*m);
  check(again.has_value());
  check(again->size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) check((*again)[i] == in[i]);
  if (const auto* d = std::get_if<deferred_msg>(&*m)) {
    check(d->entries.size() <= max_batch_entries);
    for (const auto& e : d->entries) check(e.probe_id < max_probes_per_series);
  }
  if (const auto* s = std::get_if<start_msg>(&*m)) check(s->probe_count >= 1 && s->probe_count <= max_probes_per_series);
  if (const auto* e = std::get_if<error_msg>(&*m)) check(e->reason.size() <= max_reason_length);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  check_decoded(in);

  // The same bytes as a stream: whole frames only, then a clean error.
  if (size > 0 && size <= 200000) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 0;
    int sndbuf = 1 << 20;
    (void)::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    std::size_t done = 0;
    while (done < size) {
      const ssize_t w = ::write(fds[0], data + done, size - done);
      if (w <= 0) break;
      done += static_cast<std::size_t>(w);
    }
    ::close(fds[0]);
    auto t = tsync::transport::stream_transport::adopt(tsync::transport::unique_fd(fds[1]));
    if (!t) return 0;
    std::vector<std::byte> buf;
    for (int frames = 0; frames < 100000; ++frames) {
      auto r = t->receive(buf, tsync::transport::deadline::max());
      if (!r) {
        // End of the input, or an oversized frame: nothing else is possible here.
        check(r.error() == tsync::make_error_code(tsync::errc::peer_closed) ||
              r.error() == tsync::make_error_code(tsync::errc::oversized));
        break;
      }
      check(*r == buf.size() && *r <= tsync::transport::max_message_size);
      check_decoded(buf);
    }
  }
  return 0;
}
