#pragma once
/// \file
/// A small strict JSON reader and writer (RFC 8259) for the model files.
///
/// The reader builds a tree of `json::value`s; numbers keep their text so that
/// 64-bit integers are read exactly. It rejects trailing commas, comments,
/// leading zeros, unescaped control characters, lone surrogates, duplicate
/// keys, trailing garbage, nesting deeper than 64 levels and documents above
/// the `parse_limits` (size and value count). It never throws on bad input
/// and reports the first error as a `text_error` with its line and column.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::io::json {

/// A parsed JSON value.
struct value {
  enum class kind : std::uint8_t { null, boolean, number, string, array, object };
  kind k = kind::null;
  bool b = false;
  std::string text;  ///< number text, or the decoded string
  std::vector<value> items;
  // Object members as two parallel vectors (keys[i] names values[i]): a
  // std::pair<std::string, value> member would need `value` complete here.
  std::vector<std::string> member_keys;
  std::vector<value> member_values;

  [[nodiscard]] const value* find(std::string_view key) const noexcept {
    if (k != kind::object) return nullptr;
    for (std::size_t i = 0; i < member_keys.size(); ++i)
      if (member_keys[i] == key) return &member_values[i];
    return nullptr;
  }
  /// The number as an exact int64 (no fraction or exponent), if it is one.
  [[nodiscard]] std::optional<std::int64_t> as_int64() const noexcept {
    if (k != kind::number) return std::nullopt;
    std::int64_t v{};
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
    if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
    return v;
  }
  /// The number as a finite double, if it is one.
  [[nodiscard]] std::optional<double> as_double() const noexcept {
    if (k != kind::number) return std::nullopt;
    double v{};
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  }
};

/// Deprecated (one release): `parse` returns a `text_error` (code, line,
/// column, field, message).
using parse_error [[deprecated("json::parse returns tsync::text_error")]] = text_error;

/// Limits of the reader (both overridable): the document size and the number
/// of values (every number, string, literal, array and object counts one).
/// Time is linear in the document size; memory about 100 bytes per value.
struct parse_limits {
  std::size_t max_bytes = std::size_t{16} << 20;
  std::size_t max_values = std::size_t{1} << 18;
};

namespace detail {

/// The first error of a parse: its code, byte offset and message.
struct parse_failure {
  errc code = errc::ok;
  std::size_t offset = 0;
  std::string message;
};

/// `f` as a `text_error`: the 1-based line and byte column of its offset.
template <class = void>
inline text_error to_text_error(std::string_view text, const parse_failure& f) {
  std::size_t line = 1;
  std::size_t start = 0;
  for (std::size_t i = 0; i < f.offset && i < text.size(); ++i)
    if (text[i] == '\n') {
      ++line;
      start = i + 1;
    }
  return text_error{f.code, line, f.offset - start + 1, "", f.message};
}

template <class = void>
class parser {
 public:
  explicit parser(std::string_view s, parse_limits limits = {}) : s_(s), limits_(limits) {}

  expected<value, parse_failure> run() {
    value v;
    if (s_.size() > limits_.max_bytes) {
      err_ = {errc::oversized, 0, "document larger than " + std::to_string(limits_.max_bytes) + " bytes (parse_limits::max_bytes)"};
      return unexpected(err_);
    }
    ws();
    if (!parse(v, 0)) return unexpected(err_);
    ws();
    if (i_ != s_.size()) return fail("unexpected text after the JSON value");
    return v;
  }

 private:
  std::string_view s_;
  parse_limits limits_;
  std::size_t i_ = 0;
  std::size_t values_ = 0;
  parse_failure err_{};

  unexpected<parse_failure> fail(std::string msg) {
    if (err_.code == errc::ok) err_ = {errc::invalid_argument, i_, std::move(msg)};
    return unexpected(err_);
  }
  bool set_error(std::string msg) {
    (void)fail(std::move(msg));
    return false;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return set_error("invalid literal");
    i_ += w.size();
    return true;
  }
  bool parse(value& v, int depth) {
    if (depth > 64) return set_error("nesting deeper than 64 levels");
    if (!count_value()) return false;
    if (i_ >= s_.size()) return set_error("unexpected end of input");
    const char c = s_[i_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v.k = value::kind::string;
      return string(v.text);
    }
    if (c == 't') { v.k = value::kind::boolean; v.b = true; return literal("true"); }
    if (c == 'f') { v.k = value::kind::boolean; v.b = false; return literal("false"); }
    if (c == 'n') { v.k = value::kind::null; return literal("null"); }
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    return set_error("unexpected character");
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  bool number(value& v) {
    const std::size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !digit(s_[i_])) return set_error("malformed number");
    if (s_[i_] == '0') {
      ++i_;
      if (i_ < s_.size() && digit(s_[i_])) return set_error("leading zero in number");
    } else {
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !digit(s_[i_])) return set_error("malformed fraction");
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !digit(s_[i_])) return set_error("malformed exponent");
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    v.k = value::kind::number;
    v.text.assign(s_.substr(start, i_ - start));
    return true;
  }
  bool hex4(std::uint32_t& out) {
    if (i_ + 4 > s_.size()) return set_error("truncated \\u escape");
    out = 0;
    for (int n = 0; n < 4; ++n) {
      const char c = s_[i_++];
      out <<= 4;
      if (c >= '0' && c <= '9') out |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') out |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') out |= static_cast<std::uint32_t>(c - 'A' + 10);
      else return set_error("bad hex digit in \\u escape");
    }
    return true;
  }
  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool string(std::string& out) {
    ++i_;  // opening quote
    out.clear();
    while (true) {
      if (i_ >= s_.size()) return set_error("unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return set_error("control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++i_;
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) return set_error("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return set_error("lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return set_error("lone high surrogate");
            i_ += 2;
            std::uint32_t lo = 0;
            if (!hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return set_error("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: return set_error("unknown escape");
      }
    }
  }
  bool array(value& v, int depth) {
    v.k = value::kind::array;
    ++i_;
    ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return true;
    }
    while (true) {
      value item;
      ws();
      if (!parse(item, depth + 1)) return false;
      v.items.push_back(std::move(item));
      ws();
      if (i_ >= s_.size()) return set_error("unterminated array");
      if (s_[i_] == ',') { ++i_; continue; }
      if (s_[i_] == ']') { ++i_; return true; }
      return set_error("expected ',' or ']'");
    }
  }
  // Duplicate keys, found in O(n log n) once the object is read (a check per
  // key against every earlier one was quadratic).
  bool unique_keys(const value& v) {
    const auto& k = v.member_keys;
    if (k.size() < 2) return true;
    std::vector<std::string_view> sorted(k.begin(), k.end());
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i] == sorted[i - 1]) return set_error("duplicate key \"" + quote_input(sorted[i]) + "\"");
    return true;
  }
  // Every value counts against the limit (a value costs about 100 bytes).
  bool count_value() {
    if (++values_ <= limits_.max_values) return true;
    if (err_.code == errc::ok)
      err_ = {errc::oversized, i_, "more than " + std::to_string(limits_.max_values) + " values (parse_limits::max_values)"};
    return false;
  }
  bool object(value& v, int depth) {
    v.k = value::kind::object;
    ++i_;
    ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return true;
    }
    while (true) {
      ws();
      if (i_ >= s_.size() || s_[i_] != '"') return set_error("expected a string key");
      std::string key;
      if (!string(key)) return false;
      ws();
      if (i_ >= s_.size() || s_[i_] != ':') return set_error("expected ':'");
      ++i_;
      ws();
      value item;
      if (!parse(item, depth + 1)) return false;
      v.member_keys.push_back(std::move(key));
      v.member_values.push_back(std::move(item));
      ws();
      if (i_ >= s_.size()) return set_error("unterminated object");
      if (s_[i_] == ',') { ++i_; continue; }
      if (s_[i_] == '}') { ++i_; return unique_keys(v); }
      return set_error("expected ',' or '}'");
    }
  }
};

}  // namespace detail

/// Parse one JSON document. Errors: `errc::invalid_argument` for the syntax,
/// `errc::oversized` above `limits` (line 0 for the document size), with the
/// line and the byte column of the problem.
template <class = void>
[[nodiscard]] inline expected<value, text_error> parse(std::string_view text, parse_limits limits = {}) {
  auto v = detail::parser(text, limits).run();
  if (!v) {
    if (v.error().code == errc::oversized && v.error().offset == 0)
      return unexpected(text_error{errc::oversized, 0, v.error().message});
    return unexpected(detail::to_text_error(text, v.error()));
  }
  return std::move(*v);
}

/// Append `s` as a JSON string literal.
template <class = void>
inline void write_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}
/// Append an integer.
template <class = void>
inline void write_int(std::string& out, std::int64_t v) { out += std::to_string(v); }
/// Append an unsigned integer.
template <class = void>
inline void write_uint(std::string& out, std::uint64_t v) { out += std::to_string(v); }
/// Append a finite double with round-trip precision (non-finite values, which
/// JSON cannot express, are written as null).
template <class = void>
inline void write_double(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc{}) {
    out += "null";
    return;
  }
  out.append(buf, p);
}

}  // namespace tsync::io::json
