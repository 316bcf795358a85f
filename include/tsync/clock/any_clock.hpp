#pragma once
/// \file
/// A clock source chosen at run time by name: the userspace source of a trace
/// clock ("mono_raw", "mono", "boot", "tai", "x86-tsc") or "realtime".
/// Used where the clock comes from a command line or a config file.

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include "tsync/clock/clock_source.hpp"
#include "tsync/clock/posix_clock.hpp"
#include "tsync/clock/trace_clock.hpp"
#include "tsync/clock/trace_marker_clock.hpp"
#include "tsync/clock/tsc_clock.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// A POSIX clock or the TSC of the machine of domain `D`, chosen at run time.
/// Its unit is known only at run time (ns, or cycles for the TSC:
/// `counts_cycles()`), so `now()` returns the raw counter value as a
/// `ticks<D>`; `any_clock` is the host's.
template <clock_domain D> class basic_any_clock {
 public:
  using domain = D;
  basic_any_clock(basic_posix_clock<D> c) noexcept : v_(c) {}  // NOLINT(google-explicit-constructor)
  basic_any_clock(basic_tsc_clock<D> c) noexcept : v_(c) {}    // NOLINT(google-explicit-constructor)
  basic_any_clock(trace_marker_clock c) noexcept : v_(std::move(c)) {}  // NOLINT(google-explicit-constructor)
  /// The reading (ns or cycles, see `counts_cycles()`) as a counter value of D.
  [[nodiscard]] ticks<D> now() const noexcept { return ticks<D>(static_cast<std::uint64_t>(now_raw())); }
  /// The same reading as a bare integer (the probe exchange's stamp).
  [[nodiscard]] std::int64_t now_raw() const noexcept {
    return std::visit([](const auto& c) { return c.now_raw(); }, v_);
  }
  [[nodiscard]] std::string_view name() const noexcept {
    return std::visit([](const auto& c) { return c.name(); }, v_);
  }
  /// True for the TSC (readings in cycles), false for ns clocks.
  [[nodiscard]] bool counts_cycles() const noexcept { return std::holds_alternative<basic_tsc_clock<D>>(v_); }

 private:
  std::variant<basic_posix_clock<D>, basic_tsc_clock<D>, trace_marker_clock> v_;
};

/// The host's run-time chosen clock.
using any_clock = basic_any_clock<host>;

static_assert(clock_source<any_clock>);

/// What `open_clock` does with a trace clock userspace cannot read (local,
/// global, perf, counter, uptime).
enum class kernel_clock_policy : std::uint8_t {
  refuse,        ///< `errc::unsupported`
  trace_marker,  ///< read it through a tracefs instance (`trace_marker_clock`, needs root)
};

/// Open the userspace clock named `name`, read on the machine of domain `D`
/// (the host by default): a trace clock with an exact userspace source, or
/// "realtime". Errors: `errc::not_found` for an unknown name,
/// `errc::unsupported` for a trace clock without an exact userspace source
/// (local, global, perf, counter, uptime) or the TSC off x86-64, and the
/// `clock_gettime` error for a clock this kernel lacks. With
/// `kernel_clock_policy::trace_marker` the kernel-only trace clocks are read
/// through a tracefs instance instead (errors: `trace_marker_clock::open`'s).
template <clock_domain D = host>
[[nodiscard]] inline expected<basic_any_clock<D>, std::error_code> open_clock(
    std::string_view name, kernel_clock_policy kernel = kernel_clock_policy::refuse) noexcept {
  if (auto p = parse_posix_clock(name)) {
    auto c = basic_posix_clock<D>::open(*p);
    if (!c) return unexpected(c.error());
    return basic_any_clock<D>(*c);
  }
  auto id = parse_trace_clock(name);
  if (!id) return unexpected(make_error_code(errc::not_found));
  if (*id == trace_clock_id::x86_tsc) {
    auto c = basic_tsc_clock<D>::open();
    if (!c) return unexpected(c.error());
    return basic_any_clock<D>(*c);
  }
  if (kernel == kernel_clock_policy::trace_marker) {
    auto c = trace_marker_clock::open(name);
    if (!c) return unexpected(c.error());
    return basic_any_clock<D>(std::move(*c));
  }
  return unexpected(make_error_code(errc::unsupported));
}

}  // namespace tsync::clock
