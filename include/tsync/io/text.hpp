#pragma once
/// \file
/// The number parser and the whitespace trimming shared by tsync's
/// line-oriented text readers (scenario files, probe and sync-table CSV, the
/// tool's input). Their error type, `text_error`, is in core/error.hpp.

#include <charconv>
#include <cmath>
#include <type_traits>
#include <cstddef>
#include <istream>
#include <string>
#include <string_view>

#include "tsync/core/error.hpp"
#include "tsync/core/config.hpp"
#include "tsync/core/expected.hpp"

namespace tsync::inline TSYNC_ABI {

namespace io {
/// Deprecated (one release): the CSV readers return `tsync::text_error`.
using csv_error [[deprecated("use tsync::text_error")]] = text_error;

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

/// The caps of a line-oriented text reader (both overridable per call): the
/// total input and one line, in bytes. Above either, the reader stops with
/// `errc::oversized` after reading at most the cap plus one byte, so endless
/// inputs (`/dev/zero`, a pipe) fail fast.
struct text_limits {
  std::size_t max_bytes = std::size_t{64} << 20;  ///< 64 MiB
  std::size_t max_line = std::size_t{1} << 20;    ///< 1 MiB
};

/// A UTF-8 byte-order mark, which text readers skip at the start of an input.
inline constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

/// Reads lines from a stream within `text_limits`, skipping a leading UTF-8
/// byte-order mark. `next` returns false at the end of the input or on an
/// error (then `error()` is `errc::oversized` or `errc::io_error`).
class line_reader {
 public:
  explicit line_reader(std::istream& in, text_limits limits = {}) : in_(in), limits_(limits) {}
  /// The next line, without its '\n', into `out`.
  template <class = void>
  bool next(std::string& out) {
    out.clear();
    if (error_ != errc::ok) return false;
    std::streambuf* sb = in_.rdbuf();
    if (sb == nullptr) return fail(errc::io_error);
    bool any = false;
    while (true) {
      const int c = sb->sbumpc();
      if (c == std::char_traits<char>::eof()) {
        if (!any) return false;
        break;
      }
      any = true;
      if (++total_ > limits_.max_bytes) return fail(errc::oversized);
      if (c == '\n') break;
      if (out.size() >= limits_.max_line) return fail(errc::oversized);
      out += static_cast<char>(c);
    }
    ++line_;
    if (line_ == 1 && out.compare(0, utf8_bom.size(), utf8_bom) == 0) out.erase(0, utf8_bom.size());
    return true;
  }
  /// The 1-based number of the last line returned (of the failing line on error).
  [[nodiscard]] std::size_t line() const noexcept { return line_; }
  /// `errc::ok` at a clean end of input.
  [[nodiscard]] errc error() const noexcept { return error_; }
  /// A message for `error()`.
  template <class = void>
  [[nodiscard]] std::string message() const {
    if (error_ != errc::oversized) return "read error";
    return total_ > limits_.max_bytes
               ? "input larger than " + std::to_string(limits_.max_bytes) + " bytes (text_limits::max_bytes)"
               : "line longer than " + std::to_string(limits_.max_line) + " bytes (text_limits::max_line)";
  }

 private:
  template <class = void>
  bool fail(errc e) {
    error_ = e;
    ++line_;
    return false;
  }
  std::istream& in_;
  text_limits limits_;
  std::size_t total_ = 0;
  std::size_t line_ = 0;
  errc error_ = errc::ok;
};

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
