#pragma once
/// \file
/// The library's error vocabulary: one kind, `errc` (a small enum the
/// `constexpr` math can return, with a `std::error_category` so that every
/// `errc` converts to `std::error_code`), and one "where" type per shape of
/// input. Every fallible API returns `expected<T, E>` with `E` one of:
///
/// * `errc`: operations on one value (the math, option checks, `validate`);
/// * `index_error` (code, index): every operation over a span of items;
/// * `text_error` (code, line, column, field, message): every text reader,
///   and every reader of a named file (debugfs, model JSON);
/// * `byte_error` (code, offset, message): every binary decoder (trace.dat);
/// * `std::error_code`: only at the operating-system edge (sockets, clocks).
///
/// The kind is always the first field and named `code`; the "where" fields
/// follow, the message comes last. Finer detail than `errc` lives in the
/// message. See docs/concepts.md, "Errors".

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI {

/// Error conditions reported by tsync. The numeric values are stable.
enum class errc : int {
  ok = 0,
  invalid_argument = 1,     ///< a parameter is outside its documented domain
  overflow = 2,             ///< the exact result does not fit the result type
  zero_ratio = 3,           ///< a TSC scaling ratio of 0
  bad_frac_bits = 4,        ///< frac_bits > 63
  ratio_above_max = 5,      ///< ratio above the vendor maximum
  not_found = 6,            ///< no such VM / vCPU / file / name
  ambiguous_vm = 7,         ///< two VMs for one pid and no fd given
  permission_denied = 8,    ///< debugfs (or another file) could not be read for lack of rights
  malformed_number = 9,     ///< text that is not a decimal number of the expected kind
  number_out_of_range = 10, ///< a decimal number too large for its type
  incomplete_scaling = 11,  ///< one of tsc-scaling-ratio / tsc-scaling-ratio-frac-bits without the other
  io_error = 12,            ///< an operating-system call failed
  empty_input = 13,         ///< an empty table, burst or sequence where one item is needed
  unsorted_input = 14,      ///< input that must be sorted is not
  out_of_range = 15,        ///< a time outside the range a model covers, or outside int64
  ambiguous = 16,           ///< the data cannot decide between several answers
  all_rejected = 17,        ///< every input item was rejected by a filter
  causality_violation = 18, ///< t2 < t1, or another impossible ordering of stamps
  duplicate_id = 19,        ///< a probe id seen twice
  non_finite = 20,          ///< NaN or infinity where a finite value is needed
  protocol_error = 21,      ///< a message that breaks the wire protocol
  unsupported_version = 22, ///< a peer speaks a protocol version we do not
  truncated = 23,           ///< input ended in the middle of an item
  oversized = 24,           ///< a length or count above the documented limit
  timed_out = 25,           ///< a deadline passed
  peer_closed = 26,         ///< the peer closed the connection
  unsupported = 27,         ///< not available on this platform or configuration
  infeasible = 28,          ///< constraints (e.g. causality bounds) admit no solution
  bad_format = 29,          ///< binary input that breaks its format (bad magic, wrong field size, trailing bytes)
  // New enumerators go at the end, grouped by area.
};

/// A short, stable description of an error code.
[[nodiscard]] constexpr const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "success";
    case errc::invalid_argument: return "invalid argument";
    case errc::overflow: return "arithmetic overflow: the exact result does not fit";
    case errc::zero_ratio: return "TSC scaling ratio is zero";
    case errc::bad_frac_bits: return "TSC scaling frac_bits above 63";
    case errc::ratio_above_max: return "TSC scaling ratio above the vendor maximum";
    case errc::not_found: return "not found";
    case errc::ambiguous_vm: return "several VMs belong to this pid: give the VM fd";
    case errc::permission_denied: return "permission denied";
    case errc::malformed_number: return "malformed number";
    case errc::number_out_of_range: return "number out of range";
    case errc::incomplete_scaling: return "tsc-scaling-ratio and tsc-scaling-ratio-frac-bits must both be present or both absent";
    case errc::io_error: return "I/O error";
    case errc::empty_input: return "empty input";
    case errc::unsorted_input: return "input is not sorted";
    case errc::out_of_range: return "value out of range";
    case errc::ambiguous: return "ambiguous: the data cannot decide";
    case errc::all_rejected: return "every input item was rejected";
    case errc::causality_violation: return "causality violation (e.g. t2 < t1)";
    case errc::duplicate_id: return "duplicate id";
    case errc::non_finite: return "non-finite value";
    case errc::protocol_error: return "protocol error";
    case errc::unsupported_version: return "unsupported protocol version";
    case errc::truncated: return "truncated input";
    case errc::oversized: return "length or count above the limit";
    case errc::timed_out: return "deadline passed";
    case errc::peer_closed: return "peer closed the connection";
    case errc::unsupported: return "unsupported";
    case errc::infeasible: return "constraints are infeasible";
    case errc::bad_format: return "input does not follow its format";
  }
  return "unknown tsync error";
}

namespace detail {
class error_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "tsync"; }
  [[nodiscard]] std::string message(int ev) const override { return to_string(static_cast<errc>(ev)); }
};
}  // namespace detail

/// The category of `tsync::errc` values.
[[nodiscard]] inline const std::error_category& error_category() noexcept {
  static const detail::error_category_impl cat;
  return cat;
}

/// Make a `std::error_code` from an `errc` (found by ADL).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// Where and why a span operation failed: the code and the index of the first
/// item concerned (0 for argument errors).
struct index_error {
  errc code = errc::ok;
  std::size_t index = 0;
  friend constexpr bool operator==(const index_error&, const index_error&) = default;
};

/// `s` as it may be quoted in an error message: at most `max` bytes, control
/// bytes and bytes above 0x7e written as `\xNN` (so a message never carries a
/// NUL or a terminal escape), `...` appended when cut.
[[nodiscard]] inline std::string quote_input(std::string_view s, std::size_t max = 64) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = s.size() < max ? s.size() : max;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c > 0x7e || c == '\\') {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (n < s.size()) out += "...";
  return out;
}

/// Where and why a text input failed: the code, the 1-based line (0 when not
/// tied to a line), the 1-based byte column in that line (0 when not known),
/// the field (a column or key name, or the file name for file-level errors;
/// empty when none) and a message. Messages quote input only through
/// `quote_input`.
struct text_error {
  errc code = errc::invalid_argument;
  std::size_t line = 0;
  std::size_t column = 0;
  std::string field{};
  std::string message{};

  text_error() = default;
  /// An error without a field.
  text_error(errc c, std::size_t l, std::string msg) : code(c), line(l), message(std::move(msg)) {}
  text_error(errc c, std::size_t l, std::string f, std::string msg)
      : code(c), line(l), field(std::move(f)), message(std::move(msg)) {}
  /// An error with a column.
  text_error(errc c, std::size_t l, std::size_t col, std::string f, std::string msg)
      : code(c), line(l), column(col), field(std::move(f)), message(std::move(msg)) {}

  /// "line N: message", "line N, column C: message" (or the message alone
  /// when `line` is 0).
  [[nodiscard]] std::string what() const {
    if (line == 0) return message;
    std::string w = "line " + std::to_string(line);
    if (column != 0) w += ", column " + std::to_string(column);
    return w + ": " + message;
  }
  friend bool operator==(const text_error&, const text_error&) = default;
};

/// Where and why a binary input failed: the code, the byte offset of the
/// problem (into the payload for a payload decoder, into the file for a file
/// reader; `no_offset` when not tied to a byte, e.g. for an encoder) and a
/// message that names the field (and, for trace-cmd files, the trace-cmd bug
/// a layout comes from).
struct byte_error {
  static constexpr std::size_t no_offset = static_cast<std::size_t>(-1);
  errc code = errc::invalid_argument;
  std::size_t offset = no_offset;
  std::string message{};

  /// "at byte N: message" (or the message alone without an offset).
  [[nodiscard]] std::string what() const {
    return offset == no_offset ? message : "at byte " + std::to_string(offset) + ": " + message;
  }
  friend bool operator==(const byte_error&, const byte_error&) = default;
};

}  // namespace tsync

template <> struct std::is_error_code_enum<tsync::errc> : std::true_type {};
