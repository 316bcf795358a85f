#pragma once
/// \file
/// The one duration grammar of tsync's text inputs: the tool's options and
/// scenario files.
///
///     duration = ["-"] digits ["." digits] [unit]
///     unit     = "ns" | "us" | "ms" | "s" | "m" | "min" | "h"
///
/// `m` and `min` both mean minutes. Without a unit the number is nanoseconds
/// (unless `duration_syntax::unit_required`, where only `0` may omit it). The
/// fraction is exact: `1.5us` is 1500 ns, `0.0000000015s` rounds half away
/// from zero to 2 ns. The result must fit a signed 64-bit count of
/// nanoseconds (about ±292 years): `9999999999s` is
/// `errc::number_out_of_range`, never a wrapped value. Other errors:
/// `errc::malformed_number` (empty, no digits, an unknown unit, spaces,
/// exponents, a sign other than a leading `-`).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// Variants of the grammar (see the file comment).
struct duration_syntax {
  bool unit_required = false;  ///< refuse a bare non-zero number (the tool's options)
  bool allow_negative = true;  ///< accept a leading `-`
};

namespace detail {
struct duration_unit {
  std::string_view suffix;
  std::int64_t ns;
};
// Longest suffixes first, so that "ms" and "min" win over "s" and "m".
inline constexpr duration_unit duration_units[] = {
    {"min", 60'000'000'000}, {"ns", 1}, {"us", 1'000}, {"ms", 1'000'000},
    {"h", 3'600'000'000'000}, {"s", 1'000'000'000}, {"m", 60'000'000'000},
};
}  // namespace detail

/// Parse `text` as a duration in nanoseconds (see the file comment).
[[nodiscard]] constexpr expected<std::int64_t, errc> parse_duration(std::string_view text,
                                                                   duration_syntax syntax = {}) noexcept {
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    if (!syntax.allow_negative) return unexpected(errc::out_of_range);
    negative = true;
    text.remove_prefix(1);
  }
  std::int64_t unit = 1;
  bool has_unit = false;
  for (const auto& u : detail::duration_units) {
    if (text.size() > u.suffix.size() && text.substr(text.size() - u.suffix.size()) == u.suffix) {
      unit = u.ns;
      has_unit = true;
      text.remove_suffix(u.suffix.size());
      break;
    }
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() && frac.empty()) return unexpected(errc::malformed_number);
  if (dot != std::string_view::npos && frac.empty()) return unexpected(errc::malformed_number);
  // Magnitude in ns as 128-bit: whole * unit + round(frac * unit / 10^k).
  constexpr i128 limit = static_cast<i128>(INT64_MAX) + 1;  // |INT64_MIN|
  i128 mag = 0;
  bool any_nonzero = false;
  for (char c : whole) {
    if (c < '0' || c > '9') return unexpected(errc::malformed_number);
    mag = mag * 10 + (c - '0');
    any_nonzero = any_nonzero || c != '0';
    if (mag * unit > limit) return unexpected(errc::number_out_of_range);
  }
  mag *= unit;
  if (!frac.empty()) {
    // The first 24 fraction digits decide (finer than 1 ns for every unit).
    i128 num = 0, den = 1;
    std::size_t k = 0;
    for (char c : frac) {
      if (c < '0' || c > '9') return unexpected(errc::malformed_number);
      any_nonzero = any_nonzero || c != '0';
      if (k < 24) {
        num = num * 10 + (c - '0');
        den *= 10;
        ++k;
      }
    }
    // Round half away from zero (the sign is applied last).
    const i128 scaled = num * unit;
    mag += scaled / den + (2 * (scaled % den) >= den ? 1 : 0);
    if (mag > limit) return unexpected(errc::number_out_of_range);
  }
  if (!has_unit && syntax.unit_required && any_nonzero) return unexpected(errc::malformed_number);
  if (!negative && mag == limit) return unexpected(errc::number_out_of_range);
  return static_cast<std::int64_t>(negative ? -mag : mag);
}

/// `parse_duration` as `std::chrono::nanoseconds`.
[[nodiscard]] constexpr expected<std::chrono::nanoseconds, errc> parse_chrono_duration(
    std::string_view text, duration_syntax syntax = {}) noexcept {
  auto v = parse_duration(text, syntax);
  if (!v) return unexpected(v.error());
  return std::chrono::nanoseconds(*v);
}

/// The text of `ns` with the largest unit that represents it exactly
/// (`min`, `s`, `ms`, `us`, else `ns`); `parse_duration` reads it back.
template <class = void>
[[nodiscard]] inline std::string format_duration(std::int64_t ns) {
  struct unit { std::int64_t f; const char* s; };
  for (const unit u : {unit{60'000'000'000, "min"}, unit{1'000'000'000, "s"}, unit{1'000'000, "ms"}, unit{1'000, "us"}})
    if (ns != 0 && ns % u.f == 0) return std::to_string(ns / u.f) + u.s;
  return std::to_string(ns) + "ns";
}

}  // namespace tsync::io
