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
#include "tsync/clock/trace_marker_clock.hpp"
#include "tsync/clock/trace_clock.hpp"
#include "tsync/clock/tsc_clock.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// A POSIX clock or the TSC, chosen at run time.
class any_clock {
 public:
  any_clock(posix_clock c) noexcept : v_(c) {}  // NOLINT(google-explicit-constructor)
  any_clock(tsc_clock c) noexcept : v_(c) {}    // NOLINT(google-explicit-constructor)
  any_clock(trace_marker_clock c) noexcept : v_(std::move(c)) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] std::int64_t now() const noexcept {
    return std::visit([](const auto& c) { return c.now(); }, v_);
  }
  [[nodiscard]] std::string_view name() const noexcept {
    return std::visit([](const auto& c) { return c.name(); }, v_);
  }
  /// True for the TSC (readings in cycles), false for ns clocks.
  [[nodiscard]] bool counts_cycles() const noexcept { return std::holds_alternative<tsc_clock>(v_); }

 private:
  std::variant<posix_clock, tsc_clock, trace_marker_clock> v_;
};

static_assert(clock_source<any_clock>);

/// What `open_clock` does with a trace clock userspace cannot read (local,
/// global, perf, counter, uptime).
enum class kernel_clock_policy : std::uint8_t {
  refuse,        ///< `errc::unsupported`
  trace_marker,  ///< read it through a tracefs instance (`trace_marker_clock`, needs root)
};

/// Open the userspace clock named `name`: a trace clock with an exact userspace
/// source, or "realtime". Errors: `errc::not_found` for an unknown name,
/// `errc::unsupported` for a trace clock without an exact userspace source
/// (local, global, perf, counter, uptime) or the TSC off x86-64, and the
/// `clock_gettime` error for a clock this kernel lacks. With
/// `kernel_clock_policy::trace_marker` the kernel-only trace clocks are read
/// through a tracefs instance instead (errors: `trace_marker_clock::open`'s).
[[nodiscard]] inline expected<any_clock, std::error_code> open_clock(
    std::string_view name, kernel_clock_policy kernel = kernel_clock_policy::refuse) noexcept {
  if (auto p = parse_posix_clock(name)) {
    auto c = posix_clock::open(*p);
    if (!c) return unexpected(c.error());
    return any_clock(*c);
  }
  auto id = parse_trace_clock(name);
  if (!id) return unexpected(make_error_code(errc::not_found));
  if (*id == trace_clock_id::x86_tsc) {
    auto c = tsc_clock::open();
    if (!c) return unexpected(c.error());
    return any_clock(*c);
  }
  if (kernel == kernel_clock_policy::trace_marker) {
    auto c = trace_marker_clock::open(name);
    if (!c) return unexpected(c.error());
    return any_clock(std::move(*c));
  }
  return unexpected(make_error_code(errc::unsupported));
}

}  // namespace tsync::clock
