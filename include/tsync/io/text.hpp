#pragma once
/// \file
/// The number parser and the whitespace trimming shared by tsync's
/// line-oriented text readers (scenario files, probe and sync-table CSV, the
/// tool's input). Their error type, `text_error`, is in core/error.hpp.

#include <charconv>
#include <cmath>
#include <type_traits>
#include <cstddef>
#include <string>
#include <string_view>

#include "tsync/core/error.hpp"
#include "tsync/core/config.hpp"
#include "tsync/core/expected.hpp"

namespace tsync::inline TSYNC_ABI {

namespace io {
/// The error of every CSV reader (table and probes): an alias of `text_error`.
using csv_error = text_error;

/// The one decimal parser of tsync's text inputs: all of `s` as a base-10
/// integer of type `T`, or as a finite floating-point number when `T` is a
/// floating-point type. No spaces, no leading `+`, no `0x`. Returns `errc::ok`,
/// `errc::malformed_number` (empty, not a number, trailing characters),
/// `errc::number_out_of_range` or (floating point) `errc::non_finite`.
template <class T> errc parse_decimal(std::string_view s, T& v) noexcept {
  if (s.empty()) return errc::malformed_number;
  T out{};
  std::from_chars_result r{};
  if constexpr (std::is_floating_point_v<T>) {
    r = std::from_chars(s.data(), s.data() + s.size(), out, std::chars_format::general);
  } else {
    r = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  }
  if (r.ec == std::errc::result_out_of_range) return errc::number_out_of_range;
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return errc::malformed_number;
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(out)) return errc::non_finite;
  }
  v = out;
  return errc::ok;
}

/// `parse_decimal` returning the value.
template <class T> [[nodiscard]] expected<T, errc> parse_decimal(std::string_view s) noexcept {
  T v{};
  if (auto e = parse_decimal(s, v); e != errc::ok) return unexpected(e);
  return v;
}
}  // namespace io

namespace detail {
/// Strip spaces and tabs at both ends, and trailing '\r' / '\n'.
inline std::string_view trim_text(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

using io::parse_decimal;  // the former name, kept for one release
}  // namespace detail

}  // namespace tsync
