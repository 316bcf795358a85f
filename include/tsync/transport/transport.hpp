#pragma once
/// \file
/// The transport concept: a reliable-or-not channel that moves whole messages
/// between an initiator and a responder, with a deadline on every operation.
///
/// Named requirements (T a transport, t an lvalue of T):
///
/// | expression | returns | meaning |
/// |---|---|---|
/// | `t.send(bytes, deadline)` | `expected<void, std::error_code>` | queue one whole message; error if it cannot be sent before the deadline |
/// | `t.receive(buffer, deadline)` | `expected<std::size_t, std::error_code>` | receive one whole message into `buffer` (resized to fit, up to `max_message_size`); returns its size; `errc::timed_out` at the deadline, `errc::peer_closed` when the peer is gone, `errc::oversized` for a frame above the limit |
///
/// `bytes` is `std::span<const std::byte>`, `buffer` is `std::vector<std::byte>&`,
/// `deadline` is `tsync::transport::deadline` (a steady_clock time point).
/// Stream transports frame messages; datagram-like ones map one message to one
/// datagram. Errors use `tsync::errc` values converted to `std::error_code`
/// where tsync decides, and `std::system_category()` codes for OS failures.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <span>
#include <system_error>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

/// Absolute deadline of a transport operation.
using deadline = std::chrono::steady_clock::time_point;

/// A deadline `d` from now.
[[nodiscard]] inline deadline after(std::chrono::nanoseconds d) noexcept {
  return std::chrono::steady_clock::now() + d;
}

/// Largest message any tsync transport accepts (a protocol message is far smaller).
inline constexpr std::size_t max_message_size = 64 * 1024;

template <class T>
concept message_transport = requires(T& t, std::span<const std::byte> bytes, std::vector<std::byte>& buf,
                                     deadline d) {
  { t.send(bytes, d) } -> std::same_as<expected<void, std::error_code>>;
  { t.receive(buf, d) } -> std::same_as<expected<std::size_t, std::error_code>>;
};

}  // namespace tsync::transport
