#pragma once
/// \file
/// POSIX clocks as clock sources: `CLOCK_MONOTONIC_RAW`, `CLOCK_MONOTONIC`,
/// `CLOCK_BOOTTIME`, `CLOCK_REALTIME` and `CLOCK_TAI`, read with
/// `clock_gettime` and returned as signed 64-bit nanoseconds.
///
/// Two spellings:
/// * `posix_clock`, chosen at run time: `posix_clock::open(posix_clock_id::boottime)`
///   checks once (with `clock_gettime`) that the kernel supports the clock and
///   returns an error otherwise, so that `now()` never fails afterwards;
/// * `mono_raw_clock`, default-constructible, for the clock tsync uses by
///   default (it exists on every Linux since 2.6.28 and is never slewed by NTP).
///
/// Readings are `tv_sec * 1e9 + tv_nsec`, which fits in int64 for 292 years
/// after the clock's epoch (REALTIME and TAI until 2262).

#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>
#include <system_error>
#include <cerrno>

#include "tsync/clock/clock_source.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// The POSIX clocks tsync can read.
enum class posix_clock_id : std::uint8_t {
  monotonic_raw, ///< CLOCK_MONOTONIC_RAW: hardware rate, never slewed, no suspend
  monotonic,     ///< CLOCK_MONOTONIC: NTP-slewed rate, no steps, no suspend
  boottime,      ///< CLOCK_BOOTTIME: like MONOTONIC but counts suspend
  realtime,      ///< CLOCK_REALTIME: wall clock, can be stepped
  tai,           ///< CLOCK_TAI: wall clock without leap seconds, can be stepped
};

/// The stable name of a POSIX clock ("mono_raw", "mono", "boot", "realtime", "tai"),
/// spelled like the matching ftrace trace_clock where one exists.
[[nodiscard]] constexpr std::string_view to_string(posix_clock_id id) noexcept {
  switch (id) {
    case posix_clock_id::monotonic_raw: return "mono_raw";
    case posix_clock_id::monotonic: return "mono";
    case posix_clock_id::boottime: return "boot";
    case posix_clock_id::realtime: return "realtime";
    case posix_clock_id::tai: return "tai";
  }
  return "?";
}

/// Parse a name from `to_string(posix_clock_id)` (exact match).
[[nodiscard]] constexpr std::optional<posix_clock_id> parse_posix_clock(std::string_view s) noexcept {
  for (auto id : {posix_clock_id::monotonic_raw, posix_clock_id::monotonic, posix_clock_id::boottime,
                  posix_clock_id::realtime, posix_clock_id::tai}) {
    if (to_string(id) == s) return id;
  }
  return std::nullopt;
}

/// The `clockid_t` of a POSIX clock.
[[nodiscard]] constexpr clockid_t to_clockid(posix_clock_id id) noexcept {
  switch (id) {
    case posix_clock_id::monotonic_raw: return CLOCK_MONOTONIC_RAW;
    case posix_clock_id::monotonic: return CLOCK_MONOTONIC;
    case posix_clock_id::boottime: return CLOCK_BOOTTIME;
    case posix_clock_id::realtime: return CLOCK_REALTIME;
    case posix_clock_id::tai: return CLOCK_TAI;
  }
  return CLOCK_MONOTONIC_RAW;
}

namespace detail {
[[nodiscard]] inline std::int64_t read_clockid(clockid_t id) noexcept {
  timespec ts{};
  ::clock_gettime(id, &ts);  // checked once at open(); cannot fail afterwards for a valid id
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(ts.tv_nsec);
}
}  // namespace detail

/// A POSIX clock chosen at run time, read on the machine of domain `D`.
/// Cheap to copy; `now()` is thread-safe. `posix_clock` is the host's;
/// code running in a guest reads `basic_posix_clock<guest>`.
template <clock_domain D> class basic_posix_clock {
 public:
  using domain = D;
  /// Check that the kernel supports `id` and return a clock that reads it.
  /// Errors: the `errno` of `clock_gettime` (e.g. `EINVAL` for an unsupported clock).
  [[nodiscard]] static expected<basic_posix_clock, std::error_code> open(posix_clock_id id) noexcept {
    timespec ts{};
    if (::clock_gettime(to_clockid(id), &ts) != 0) {
      return unexpected(std::error_code(errno, std::system_category()));
    }
    return basic_posix_clock(id);
  }
  /// Current reading, nanoseconds since the clock's epoch.
  [[nodiscard]] domain_time<D> now() const noexcept { return at_ns<D>(now_raw()); }
  /// The same reading as a bare integer (the probe exchange's stamp).
  [[nodiscard]] std::int64_t now_raw() const noexcept { return detail::read_clockid(to_clockid(id_)); }
  [[nodiscard]] std::string_view name() const noexcept { return to_string(id_); }
  [[nodiscard]] posix_clock_id id() const noexcept { return id_; }
  /// Resolution reported by `clock_getres`, in ns (0 if unavailable).
  [[nodiscard]] std::int64_t resolution() const noexcept {
    timespec ts{};
    if (::clock_getres(to_clockid(id_), &ts) != 0) return 0;
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(ts.tv_nsec);
  }

 private:
  explicit basic_posix_clock(posix_clock_id id) noexcept : id_(id) {}
  posix_clock_id id_;
};

/// The host's POSIX clock chosen at run time.
using posix_clock = basic_posix_clock<host>;

/// `CLOCK_MONOTONIC_RAW` in nanoseconds, read on the machine of domain `D`:
/// tsync's default clock source. `mono_raw_clock` is the host's.
template <clock_domain D> struct basic_mono_raw_clock {
  using domain = D;
  [[nodiscard]] domain_time<D> now() const noexcept { return at_ns<D>(now_raw()); }
  /// The same reading as a bare integer (the probe exchange's stamp).
  [[nodiscard]] std::int64_t now_raw() const noexcept { return detail::read_clockid(CLOCK_MONOTONIC_RAW); }
  [[nodiscard]] std::string_view name() const noexcept { return "mono_raw"; }
};

/// The host's `CLOCK_MONOTONIC_RAW`.
using mono_raw_clock = basic_mono_raw_clock<host>;

static_assert(clock_source<posix_clock>);
static_assert(clock_source<mono_raw_clock>);
static_assert(clock_source<basic_mono_raw_clock<guest>>);

}  // namespace tsync::clock
