#pragma once
/// \file
/// The error type and the whitespace trimming shared by tsync's line-oriented
/// text readers (scenario files, probe and sync-table CSV, the tool's input).

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>

#include "tsync/core/error.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI {

/// A text-input error: the code, the 1-based line (0: not tied to a line) and a
/// message naming the field and the problem.
struct text_error {
  errc code = errc::invalid_argument;
  std::size_t line = 0;
  std::string message{};
  /// "line N: message" (or the message alone).
  [[nodiscard]] std::string what() const {
    return line == 0 ? message : "line " + std::to_string(line) + ": " + message;
  }
};

namespace io {
/// The error of every CSV reader (table and probes): an alias of `text_error`.
using csv_error = text_error;
}  // namespace io

namespace detail {
/// Strip spaces and tabs at both ends, and trailing '\r' / '\n'.
inline std::string_view trim_text(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

/// Parse all of `s` as a base-10 integer: `errc::ok`, `errc::malformed_number`
/// (empty, not a number, or trailing characters) or `errc::number_out_of_range`.
template <class T> errc parse_decimal(std::string_view s, T& v) noexcept {
  if (s.empty()) return errc::malformed_number;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec == std::errc::result_out_of_range) return errc::number_out_of_range;
  if (ec != std::errc{} || p != s.data() + s.size()) return errc::malformed_number;
  return errc::ok;
}
}  // namespace detail

}  // namespace tsync
