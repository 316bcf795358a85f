#pragma once
/// \file
/// Clock and boot identity of one side of a probe session (the payload of the
/// protocol's `hello`, see message.hpp): gathering it on this machine, printing
/// it, and deciding whether two sides can be synchronized at all.
///
/// - `boot_id` is the machine's `/proc/sys/kernel/random/boot_id` (a new one at
///   every boot, so a guest reboot changes it);
/// - `nonce` is random per process (`make_nonce`), so a restarted agent on the
///   same boot is told apart;
/// - the unit is ns, or cycles for the TSC with its rate in Hz (`measure_tsc_hz`).
///
/// `clock_mismatch` refuses what cannot give a meaningful offset (clocks in
/// different units, a clock that measures no time, TSCs of different rates),
/// with a message that names both clocks.

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "tsync/clock/trace_clock.hpp"
#include "tsync/clock/tsc_clock.hpp"
#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/probe/message.hpp"

namespace tsync::inline TSYNC_ABI::probe {

/// Parse a boot id in its text form (`8-4-4-4-12` hex digits, as in
/// /proc/sys/kernel/random/boot_id; a trailing newline is allowed).
[[nodiscard]] inline std::optional<std::array<std::uint8_t, 16>> parse_boot_id(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.size() != 36) return std::nullopt;
  std::array<std::uint8_t, 16> out{};
  std::size_t n = 0;
  int half = -1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return std::nullopt;
      continue;
    }
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    if (v < 0) return std::nullopt;
    if (half < 0) {
      half = v;
    } else {
      out[n++] = static_cast<std::uint8_t>((half << 4) | v);
      half = -1;
    }
  }
  return out;
}

/// A boot id in its text form (lower-case `8-4-4-4-12`).
[[nodiscard]] inline std::string format_boot_id(const std::array<std::uint8_t, 16>& id) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[id[i] >> 4];
    s += hex[id[i] & 0xF];
  }
  return s;
}

/// This machine's boot id (`path` defaults to the kernel's). Errors: the
/// `open`/`read` errno, `errc::malformed_number` for text that is not a boot id.
[[nodiscard]] inline expected<std::array<std::uint8_t, 16>, std::error_code> read_boot_id(
    const char* path = "/proc/sys/kernel/random/boot_id") noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return unexpected(std::error_code(errno, std::system_category()));
  char buf[64];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  const int err = errno;
  ::close(fd);
  if (n < 0) return unexpected(std::error_code(err, std::system_category()));
  auto id = parse_boot_id(std::string_view(buf, static_cast<std::size_t>(n)));
  if (!id) return unexpected(make_error_code(errc::malformed_number));
  return *id;
}

/// A random per-process session nonce (never 0): `getrandom`, mixed with the
/// time and the pid (so it differs between processes even without entropy).
[[nodiscard]] inline std::uint64_t make_nonce() noexcept {
  std::uint64_t v = 0;
  if (::getrandom(&v, sizeof v, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof v)) v = 0;
  v ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  v ^= static_cast<std::uint64_t>(::getpid()) << 16;
  return v == 0 ? 1 : v;
}

/// The TSC's rate in Hz, measured against CLOCK_MONOTONIC_RAW over `span`
/// (rounded to kHz); 0 where there is no TSC.
[[nodiscard]] inline std::uint64_t measure_tsc_hz(std::chrono::nanoseconds span = std::chrono::milliseconds(20)) noexcept {
#if TSYNC_HAVE_TSC
  auto raw = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  };
  const std::int64_t n0 = raw();
  const std::uint64_t c0 = clock::rdtsc_ordered();
  std::int64_t n1 = n0;
  while (n1 - n0 < span.count()) n1 = raw();
  const std::uint64_t c1 = clock::rdtsc_ordered();
  if (n1 <= n0 || c1 <= c0) return 0;
  const long double hz = static_cast<long double>(c1 - c0) * 1e9L / static_cast<long double>(n1 - n0);
  return static_cast<std::uint64_t>(hz / 1000.0L + 0.5L) * 1000u;
#else
  (void)span;
  return 0;
#endif
}

/// The identity of this side reading clock `clock_name` (`cycles`: the TSC).
/// The boot id is left zero (unknown) when it cannot be read.
[[nodiscard]] inline peer_identity local_identity(std::string_view clock_name, bool cycles, std::uint64_t nonce) {
  peer_identity id;
  id.clock = std::string(clock_name.substr(0, max_clock_name_length));
  for (char& c : id.clock) {
    if (c < 0x20 || c > 0x7E) c = '?';
  }
  id.unit = cycles ? time_unit::cycles : time_unit::ns;
  id.tsc_hz = cycles ? measure_tsc_hz() : 0;
  if (auto b = read_boot_id()) id.boot_id = *b;
  id.nonce = nonce;
  return id;
}

/// "'x86-tsc' (cycles at 2903.996 MHz)" / "'mono_raw' (ns)".
[[nodiscard]] inline std::string describe_clock(const peer_identity& id) {
  std::string s = "'" + id.clock + "' (" + to_string(id.unit);
  if (id.unit == time_unit::cycles) {
    if (id.tsc_hz == 0) {
      s += ", rate unknown";
    } else {
      const auto khz = id.tsc_hz / 1000;
      std::string frac = std::to_string(khz % 1000);
      frac.insert(0, 3 - frac.size(), '0');
      s += " at " + std::to_string(khz / 1000) + "." + frac + " MHz";
    }
  }
  return s + ")";
}

/// Why a host reading `host_side` and a guest reading `guest_side` cannot be
/// synchronized by probes, naming both clocks; empty when they can. Known trace
/// clocks follow `clock::check_pairing`; other names (e.g. `realtime`) need the
/// same unit. TSC rates that both sides know must agree within 0.1 %.
///
/// `host_label` and `guest_label` name the sides in the message (a responder
/// that does not know which side is the host says e.g. "sync side" / "agent").
[[nodiscard]] inline std::optional<std::string> clock_mismatch(const peer_identity& host_side,
                                                               const peer_identity& guest_side,
                                                               std::string_view host_label = "host",
                                                               std::string_view guest_label = "guest") {
  const std::string both = std::string(host_label) + " reads " + describe_clock(host_side) + ", " +
                           std::string(guest_label) + " reads " + describe_clock(guest_side);
  const auto h = clock::parse_trace_clock(host_side.clock);
  const auto g = clock::parse_trace_clock(guest_side.clock);
  if (h && g) {
    auto r = clock::check_pairing(*h, *g);
    if (!r.probe.possible) return "clock mismatch: " + both + ": " + r.probe.reason;
  }
  if (host_side.unit != guest_side.unit)
    return "clock mismatch: " + both + ": the units differ (run both sides with the same --clock)";
  if (host_side.unit == time_unit::cycles && host_side.tsc_hz != 0 && guest_side.tsc_hz != 0) {
    const auto a = host_side.tsc_hz, b = guest_side.tsc_hz;
    const auto diff = a > b ? a - b : b - a;
    if (diff > std::max(a, b) / 1000)
      return "clock mismatch: " + both + ": the TSC rates differ (TSC scaling?): convert to ns first";
  }
  return std::nullopt;
}

/// What changed between two answers of a peer: "the peer rebooted (boot id A
/// -> B)" or "the peer's agent restarted (same boot, new session nonce)"; empty
/// when both come from the same process of the same boot (the clock is checked
/// by the handshake, not here). A change means the two answers must not be
/// joined into one timeline (a break of kind `reboot`).
[[nodiscard]] inline std::optional<std::string> identity_change(const peer_identity& before, const peer_identity& now) {
  if (before.boot_id == now.boot_id && before.nonce == now.nonce) return std::nullopt;
  if (before.boot_id != now.boot_id)
    return "the peer rebooted (boot id " + format_boot_id(before.boot_id) + " -> " + format_boot_id(now.boot_id) + ")";
  return std::string("the peer's agent restarted (same boot, new session nonce)");
}

}  // namespace tsync::probe
