// libFuzzer target: the probe wire protocol -- the decoder, the responder's state
// machine (`serve`, what the agent runs for every client) and, for small inputs,
// the stream framing in front of them.
//
// Properties checked on every input:
// - decode() never crashes, never reads out of bounds, never hangs;
// - whatever decodes re-encodes to exactly the input bytes (the codec is canonical),
//   and what it decodes to satisfies the documented limits;
// - `serve` (with default options, and as tsync's agent runs it: hello required)
//   fed the input as a sequence of frames (each a 2-byte little-endian
//   length, 0 meaning 65536 = the 64 KiB limit, then that many bytes) through a
//   fake in-memory transport returns (never hangs), and everything it sends
//   decodes and fits max_message_size;
// - the framed stream transport fed the same bytes (inputs up to 4 KiB) yields
//   only whole frames within max_message_size, then a clean error.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsync/core/time.hpp"
#include "tsync/probe/exchange.hpp"
#include "tsync/probe/identity.hpp"
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

// A message transport over the fuzz input: each receive() returns the next frame.
class fake_transport {
 public:
  explicit fake_transport(std::span<const std::byte> in) : in_(in) {}
  tsync::expected<void, std::error_code> send(std::span<const std::byte> bytes, tsync::transport::deadline) {
    check(bytes.size() <= tsync::transport::max_message_size);
    // Everything the responder sends decodes, except the error that answers a
    // peer of another version in that peer's version (an older one).
    const auto v = tsync::probe::peek_version(bytes);
    check(tsync::probe::decode(bytes).has_value() ||
          (v && *v < tsync::probe::wire_version && bytes.size() > 5 &&
           std::to_integer<unsigned>(bytes[5]) == static_cast<unsigned>(tsync::probe::message_type::error)));
    return {};
  }
  tsync::expected<std::size_t, std::error_code> receive(std::vector<std::byte>& buf, tsync::transport::deadline) {
    if (in_.size() < 2) return tsync::unexpected(tsync::make_error_code(tsync::errc::peer_closed));
    std::size_t n = std::to_integer<std::size_t>(in_[0]) | (std::to_integer<std::size_t>(in_[1]) << 8);
    if (n == 0) n = tsync::transport::max_message_size;
    in_ = in_.subspan(2);
    if (n > in_.size()) n = in_.size();
    buf.assign(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(n));
    in_ = in_.subspan(n);
    return n;
  }

 private:
  std::span<const std::byte> in_;
};

// A clock that advances one microsecond per reading.
struct counter_clock {
  using domain = tsync::guest;  // the responder's clock
  std::int64_t t = 0;
  std::int64_t now_raw() noexcept { return t += 1000; }
  tsync::domain_time<domain> now() noexcept { return tsync::at_ns<domain>(now_raw()); }
  [[nodiscard]] std::string_view name() const noexcept { return "fuzz"; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  check_decoded(in);

  // The responder's state machine over the input as frames.
  {
    fake_transport t(in);
    counter_clock clk;
    tsync::probe::responder_options opt;
    (void)tsync::probe::serve(t, clk, opt);
  }
  // And as tsync's agent runs it: a hello required, the clocks compared.
  {
    fake_transport t(in);
    counter_clock clk;
    tsync::probe::responder_options opt;
    opt.require_hello = true;
    opt.identity.clock = "mono_raw";
    opt.on_hello = [&](const tsync::probe::peer_identity& p) { return tsync::probe::clock_mismatch(p, opt.identity); };
    (void)tsync::probe::serve(t, clk, opt);
  }

  // The same bytes as a stream: whole frames only, then a clean error.
  if (size > 0 && size <= 4096) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 0;
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
