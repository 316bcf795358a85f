// libFuzzer target: the probe wire protocol -- the decoder and the responder's
// state machine (`serve`, what the agent runs for every client) over a fake
// in-memory transport, with frames up to the 64 KiB limit. The stream framing in
// front of them (a real socket per input) is fuzz_stream.cpp.
//
// Properties checked on every input:
// - decode() never crashes, never reads out of bounds, never hangs;
// - whatever decodes re-encodes to exactly the input bytes (the codec is canonical),
//   and what it decodes to satisfies the documented limits;
// - `serve` (with default options, and as tsync's agent runs it: hello required)
//   fed the input as a sequence of frames (each a 2-byte little-endian
//   length, 0 meaning 65536 = the 64 KiB limit, then that many bytes) through a
//   fake in-memory transport returns (never hangs), and everything it sends
//   decodes and fits max_message_size.
//
// Speed (issue 13 item 20): tens of thousands of inputs per CPU second. It used
// to run at 70-400 because every input also went through a socketpair and a
// stream_transport, whose 128 KiB receive buffer was allocated and zeroed per
// input (above ASan's 128 KiB primary size: an mmap and 33 page faults each
// time) -- about 99 % of the time went there. Nothing here opens a descriptor,
// sleeps, polls or waits out a timeout: the fake transport ends with
// peer_closed and the responder returns at once.
#include <algorithm>
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
#include "tsync/transport/transport.hpp"
#include "wire_checks.hpp"

namespace {

using tsync_fuzz::check;
using tsync_fuzz::check_decoded;

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

  return 0;
}
