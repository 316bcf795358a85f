#pragma once
/// \file
/// `kvm:kvm_write_tsc_offset` records read from the text of a host trace, for
/// `offset_periods::make` (see offset_steps.hpp).
///
/// Accepted text: what tracefs prints (`trace`, `trace_pipe`) and what
/// `trace-cmd report` prints, for a trace recorded with the `x86-tsc` trace
/// clock, so that the timestamp column is the raw host TSC. A record line is
///
///     <context> <timestamp>: kvm_write_tsc_offset: vcpu=<u32> prev=<u64> next=<u64>
///
/// * `<context>` (task-pid, an optional tgid, `[cpu]`, optional latency flags,
///   an optional file or instance name from `trace-cmd report`) is not read:
///   the task name may hold spaces, and the records do not need it.
/// * `<timestamp>:` is a decimal integer followed by `:`, the form both tools
///   print for a clock that is not in nanoseconds. `trace-cmd report` prints it
///   with `%12d`, so a long TSC can follow the `[cpu]` column with no space
///   (`[001]27951088470225859:`); that is accepted. A timestamp of the form
///   `secs.usecs:` (or `secs.nsecs:`) comes from a nanosecond clock and is an
///   error (`errc::unsupported`) telling how to record with `x86-tsc`. A
///   `(+delta)` column (`trace-cmd report --ts-diff`) after it is skipped.
/// * The event name may be spelled `kvm:kvm_write_tsc_offset:`.
/// * The fields are the tracepoint's `vcpu=%u prev=%llu next=%llu`, in that
///   order, separated by blanks; nothing may follow `next`.
///
/// Lines without the event name (other events, `cpus=N`, blank lines) and lines
/// whose first non-blank character is `#` (tracefs headers) are skipped. When
/// the word before the event name is another event's name followed by `:`
/// (the text of a `print` or `tracing_mark_write` event), the line is skipped
/// too. Any other line with the event name that does not have the form above
/// is an error naming its line (`tsync::text_error`): a missing field or
/// timestamp, a number out of range, a field with trailing characters, text
/// after `next`. A line longer than `max_trace_line` bytes is an error
/// (`errc::oversized`); nothing else limits the input, and no input can crash
/// or hang the parser (NUL bytes and any other byte are plain characters).

#include <cstddef>
#include <cstdint>
#include <istream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/io/text.hpp"
#include "tsync/correct/offset_steps.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// Records read from a host trace, in file order, with the line of each.
struct tsc_offset_records {
  std::vector<correct::tsc_offset_write> writes;  ///< the records, in file order
  std::vector<std::size_t> lines;        ///< `lines[i]`: the 1-based line of `writes[i]`
  std::size_t lines_read = 0;            ///< lines read in all (records and skipped lines)
};

/// The longest line accepted, in bytes without the line break (the kernel
/// prints one event into a page; this leaves a wide margin).
inline constexpr std::size_t max_trace_line = 64 * 1024;

namespace detail {

inline constexpr std::string_view tsc_event_name = "kvm_write_tsc_offset";

inline bool trace_blank(char c) noexcept { return c == ' ' || c == '\t'; }
inline bool trace_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool trace_ident_char(char c) noexcept {
  return trace_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/// At most 40 bytes of `s` for a message, with bytes outside printable ASCII as '?'.
inline std::string trace_quote(std::string_view s) {
  std::string out;
  const std::size_t n = s.size() < 40 ? s.size() : 40;
  out.reserve(n + 5);
  out += '\'';
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (s.size() > n) out += "...";
  out += '\'';
  return out;
}

inline text_error trace_fail(std::size_t line, errc code, std::string message) {
  return text_error{code, line, std::move(message)};
}

/// True when `s` is `[A-Za-z_][A-Za-z0-9_]*`, optionally `system:` before it.
inline bool trace_identifier(std::string_view s) noexcept {
  if (s.empty() || trace_digit(s.front())) return false;
  for (char c : s)
    if (!trace_ident_char(c)) return false;
  return true;
}
inline bool trace_event_word(std::string_view s) noexcept {
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) return trace_identifier(s);
  return trace_identifier(s.substr(0, colon)) && trace_identifier(s.substr(colon + 1));
}

/// Where the event name starts as a word followed by ':' (preceded by a blank,
/// the line start, or `kvm:`); `npos` when the line has none.
inline std::size_t find_tsc_event(std::string_view t) noexcept {
  std::size_t from = 0;
  while (true) {
    const std::size_t pos = t.find(tsc_event_name, from);
    if (pos == std::string_view::npos) return pos;
    const std::size_t end = pos + tsc_event_name.size();
    const bool colon_after = end < t.size() && t[end] == ':';
    bool word_before = pos == 0 || trace_blank(t[pos - 1]);
    if (!word_before && pos >= 4 && t.substr(pos - 4, 4) == "kvm:") word_before = pos == 4 || trace_blank(t[pos - 5]);
    if (colon_after && word_before) return pos;
    from = pos + 1;
  }
}

/// Parse one `name=<decimal>` field at the start of `rest` (blanks before it
/// skipped); advances `rest` past the number. `max` bounds the value.
inline std::optional<text_error> trace_field(std::string_view& rest, std::string_view name, std::uint64_t max,
                                             std::uint64_t& value, std::size_t line) {
  while (!rest.empty() && trace_blank(rest.front())) rest.remove_prefix(1);
  const std::string expected_form = "expected 'vcpu=N prev=N next=N'";
  if (rest.empty())
    return trace_fail(line, errc::invalid_argument,
                      "kvm_write_tsc_offset: missing field '" + std::string(name) + "=' (" + expected_form + ")");
  if (rest.size() <= name.size() || rest.substr(0, name.size()) != name || rest[name.size()] != '=')
    return trace_fail(line, errc::invalid_argument,
                      "kvm_write_tsc_offset: missing field '" + std::string(name) + "=' at " + trace_quote(rest) +
                          " (" + expected_form + ")");
  rest.remove_prefix(name.size() + 1);
  std::size_t n = 0;
  while (n < rest.size() && trace_digit(rest[n])) ++n;
  if (n == 0)
    return trace_fail(line, errc::malformed_number,
                      "kvm_write_tsc_offset: field '" + std::string(name) + "' has no decimal number: " +
                          trace_quote(rest));
  if (n < rest.size() && !trace_blank(rest[n]))
    return trace_fail(line, errc::malformed_number,
                      "kvm_write_tsc_offset: field '" + std::string(name) + "' has trailing characters: " +
                          trace_quote(rest));
  std::uint64_t v = 0;
  const errc e = tsync::detail::parse_decimal(rest.substr(0, n), v);  // a run of digits: ok or out of range
  if (e != errc::ok || v > max)
    return trace_fail(line, errc::number_out_of_range,
                      "kvm_write_tsc_offset: field '" + std::string(name) + "' " + trace_quote(rest.substr(0, n)) +
                          " is above " + std::to_string(max));
  value = v;
  rest.remove_prefix(n);
  return std::nullopt;
}

/// Classify and parse the timestamp word before the event name.
/// Returns the timestamp; `skip` is set when the word is another event's name.
inline expected<std::uint64_t, text_error> trace_timestamp(std::string_view prefix, std::size_t line, bool& skip) {
  skip = false;
  auto last_word = [](std::string_view& s) {
    while (!s.empty() && trace_blank(s.back())) s.remove_suffix(1);
    std::size_t b = s.size();
    while (b > 0 && !trace_blank(s[b - 1])) --b;
    const std::string_view w = s.substr(b);
    s.remove_suffix(s.size() - b);
    return w;
  };
  std::string_view rest = prefix;
  std::string_view w = last_word(rest);
  // `trace-cmd report --ts-diff` prints "(+delta)" after the timestamp.
  if (w.size() >= 3 && w.substr(0, 2) == "(+" && w.back() == ')') w = last_word(rest);
  const char* const how =
      "the trace must be recorded with the x86-tsc clock (trace-cmd record -C x86-tsc, or trace_clock=x86-tsc in "
      "tracefs)";
  if (w.empty())
    return unexpected(trace_fail(line, errc::invalid_argument,
                                 "kvm_write_tsc_offset: no timestamp column before the event name; " +
                                     std::string(how)));
  if (w.back() != ':')
    return unexpected(trace_fail(line, errc::invalid_argument,
                                 "kvm_write_tsc_offset: no timestamp before the event name (found " + trace_quote(w) +
                                     ")"));
  w.remove_suffix(1);
  if (trace_event_word(w)) {  // the name is text inside another event
    skip = true;
    return 0;
  }
  // trace-cmd report glues a long timestamp to the "[cpu]" column.
  if (const auto br = w.rfind(']'); br != std::string_view::npos) w.remove_prefix(br + 1);
  std::size_t n = 0;
  while (n < w.size() && trace_digit(w[n])) ++n;
  if (n > 0 && n == w.size()) {
    std::uint64_t v = 0;
    if (tsync::detail::parse_decimal(w, v) != errc::ok)  // all digits: only out of range can fail
      return unexpected(trace_fail(line, errc::number_out_of_range,
                                   "kvm_write_tsc_offset: timestamp " + trace_quote(w) + " is above 2^64-1"));
    return v;
  }
  if (n > 0 && n + 1 < w.size() && w[n] == '.') {
    std::size_t m = n + 1;
    while (m < w.size() && trace_digit(w[m])) ++m;
    if (m == w.size())
      return unexpected(trace_fail(line, errc::unsupported,
                                   "kvm_write_tsc_offset: timestamp " + trace_quote(w) +
                                       " is in seconds (a nanosecond trace clock): " + how));
  }
  return unexpected(trace_fail(line, errc::malformed_number,
                               "kvm_write_tsc_offset: malformed timestamp " + trace_quote(w) +
                                   " (expected a decimal host TSC followed by ':')"));
}

}  // namespace detail

/// Parse one line of a host trace (`line_no` is put in errors). Returns the
/// record, an empty optional for a line that is not a kvm_write_tsc_offset
/// record, or the error (see the file comment for the format).
[[nodiscard]] inline expected<std::optional<correct::tsc_offset_write>, text_error> parse_tsc_offset_line(
    std::string_view line, std::size_t line_no = 0) {
  if (line.size() > max_trace_line)
    return unexpected(detail::trace_fail(line_no, errc::oversized,
                                         "line longer than " + std::to_string(max_trace_line) + " bytes"));
  const std::string_view t = tsync::detail::trim_text(line);
  if (t.empty() || t.front() == '#') return std::optional<correct::tsc_offset_write>{};
  const std::size_t pos = detail::find_tsc_event(t);
  if (pos == std::string_view::npos) return std::optional<correct::tsc_offset_write>{};
  std::size_t name_begin = pos;
  if (pos >= 4 && t.substr(pos - 4, 4) == "kvm:") name_begin = pos - 4;
  bool skip = false;
  const auto ts = detail::trace_timestamp(t.substr(0, name_begin), line_no, skip);
  if (!ts) return unexpected(ts.error());
  if (skip) return std::optional<correct::tsc_offset_write>{};
  std::string_view rest = t.substr(pos + detail::tsc_event_name.size() + 1);
  std::uint64_t vcpu = 0;
  correct::tsc_offset_write w;
  w.host_tsc = *ts;
  if (auto e = detail::trace_field(rest, "vcpu", std::numeric_limits<std::uint32_t>::max(), vcpu, line_no))
    return unexpected(std::move(*e));
  w.vcpu = static_cast<std::uint32_t>(vcpu);
  if (auto e = detail::trace_field(rest, "prev", std::numeric_limits<std::uint64_t>::max(), w.previous_offset, line_no))
    return unexpected(std::move(*e));
  if (auto e = detail::trace_field(rest, "next", std::numeric_limits<std::uint64_t>::max(), w.next_offset, line_no))
    return unexpected(std::move(*e));
  while (!rest.empty() && detail::trace_blank(rest.front())) rest.remove_prefix(1);
  if (!rest.empty())
    return unexpected(detail::trace_fail(line_no, errc::invalid_argument,
                                         "kvm_write_tsc_offset: unexpected text after the 'next' field: " +
                                             detail::trace_quote(rest)));
  return std::optional<correct::tsc_offset_write>{w};
}

/// Incremental reader: feed lines in order with `add_line`, take the records
/// with `take`. Stops at the first error (later lines are refused).
class tsc_offset_reader {
 public:
  /// Parse the next line (without its line break). Returns the error, if any.
  std::optional<text_error> add_line(std::string_view line) {
    if (failed_) return text_error{errc::invalid_argument, out_.lines_read, "the reader stopped at an earlier error"};
    ++out_.lines_read;
    auto r = parse_tsc_offset_line(line, out_.lines_read);
    if (!r) {
      failed_ = true;
      return std::move(r.error());
    }
    if (*r) {
      out_.writes.push_back(**r);
      out_.lines.push_back(out_.lines_read);
    }
    return std::nullopt;
  }
  /// Lines read so far.
  [[nodiscard]] std::size_t lines_read() const noexcept { return out_.lines_read; }
  /// The records read so far (the reader is left empty).
  [[nodiscard]] tsc_offset_records take() { return std::move(out_); }

 private:
  tsc_offset_records out_;
  bool failed_ = false;
};

/// Parse the records of a whole host trace held in memory. Lines end with
/// `\n` (a `\r` before it is ignored); the last line needs no line break.
[[nodiscard]] inline expected<tsc_offset_records, text_error> parse_tsc_offset_records(std::string_view text) {
  tsc_offset_reader reader;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    if (auto e = reader.add_line(line)) return unexpected(std::move(*e));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return reader.take();
}

/// Read the records of a host trace from a stream, in chunks: memory stays
/// bounded by the records and one line of at most `max_trace_line` bytes.
/// A read error is `errc::io_error`.
[[nodiscard]] inline expected<tsc_offset_records, text_error> read_tsc_offset_records(std::istream& in) {
  tsc_offset_reader reader;
  std::string line;
  std::vector<char> chunk(std::size_t{1} << 16);
  auto too_long = [&] {
    return detail::trace_fail(reader.lines_read() + 1, errc::oversized,
                              "line longer than " + std::to_string(max_trace_line) + " bytes");
  };
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const std::size_t got = static_cast<std::size_t>(in.gcount());
    std::string_view data(chunk.data(), got);
    while (!data.empty()) {
      const std::size_t nl = data.find('\n');
      const std::string_view piece = data.substr(0, nl);
      if (line.size() + piece.size() > max_trace_line) return unexpected(too_long());
      line.append(piece);
      if (nl == std::string_view::npos) break;
      if (auto e = reader.add_line(line)) return unexpected(std::move(*e));
      line.clear();
      data.remove_prefix(nl + 1);
    }
  }
  if (in.bad())
    return unexpected(detail::trace_fail(0, errc::io_error,
                                         "read error after line " + std::to_string(reader.lines_read())));
  if (!line.empty())
    if (auto e = reader.add_line(line)) return unexpected(std::move(*e));
  return reader.take();
}

}  // namespace tsync::io
