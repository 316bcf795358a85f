#pragma once
/// \file
/// A sync table as text: one sample per line, `time,offset[,ratio,frac_bits]`
/// (decimal integers; time and offset signed 64-bit, ratio unsigned 64-bit,
/// frac_bits 0..63). Blank lines and lines whose first non-blank character is
/// `#` are skipped; spaces around fields are allowed. A first data line whose
/// first field is the word `time` is taken as a header and skipped. Without
/// ratio and frac_bits a sample is unscaled (ratio 1, frac_bits 0).
///
/// Every error names the 1-based line it was found on.

#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/io/text.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::io {


/// Parsed samples with the line each came from.
struct csv_table {
  std::vector<sync_sample> samples;  ///< in file order
  std::vector<std::size_t> lines;    ///< lines[i] is the line of samples[i]
};

namespace detail {
// The message says what; `what()` adds the line.
inline text_error csv_fail(std::size_t line, errc code, const std::string& what, std::string field = {}) {
  return {code, line, std::move(field), what};
}
}  // namespace detail

/// Parse a table from text (see the file comment for the format).
/// The input is read within `limits` (see io/text.hpp); a UTF-8 byte-order
/// mark before the first line is skipped.
[[nodiscard]] inline expected<csv_table, text_error> parse_table_csv(std::istream& in, text_limits limits = {}) {
  csv_table out;
  std::string raw;
  std::size_t line = 0;
  bool seen_data = false;
  line_reader lines(in, limits);
  while (lines.next(raw)) {
    line = lines.line();
    const std::string_view t = tsync::detail::trim_text(raw);
    if (t.empty() || t.front() == '#') continue;
    std::vector<std::string_view> f;
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = t.find(',', start);
      f.push_back(tsync::detail::trim_text(t.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                                   : comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (!seen_data && !f.empty() && f[0] == "time") {  // header line
      seen_data = true;
      continue;
    }
    seen_data = true;
    if (f.size() != 2 && f.size() != 4)
      return unexpected(detail::csv_fail(line, errc::invalid_argument,
                                         "expected 'time,offset' or 'time,offset,ratio,frac_bits', found " +
                                             std::to_string(f.size()) + " field(s)"));
    sync_sample s;
    std::int64_t time = 0;
    std::int64_t off = 0;
    static constexpr const char* names[] = {"time", "offset", "ratio", "frac_bits"};
    for (std::size_t i = 0; i < f.size(); ++i) {
      errc e = errc::ok;
      unsigned frac = 0;
      switch (i) {
        case 0: e = tsync::detail::parse_decimal(f[i], time); break;
        case 1: e = tsync::detail::parse_decimal(f[i], off); break;
        case 2: e = tsync::detail::parse_decimal(f[i], s.ratio); break;
        default:
          e = tsync::detail::parse_decimal(f[i], frac);
          if (e == errc::ok && frac > 63) e = errc::bad_frac_bits;
          s.frac_bits = static_cast<std::uint8_t>(frac);
          break;
      }
      if (e != errc::ok)
        return unexpected(detail::csv_fail(line, e,
                                           std::string(names[i]) + " '" + quote_input(f[i], 40) +
                                               "': " + to_string(e), names[i]));
    }
    if (f.size() == 4 && s.ratio == 0)
      return unexpected(detail::csv_fail(line, errc::zero_ratio, "ratio is zero", "ratio"));
    s.guest_time = at_ns<guest>(time);
    s.offset = guest_to_host(off);
    out.samples.push_back(s);
    out.lines.push_back(line);
  }
  if (lines.error() != errc::ok) return unexpected(detail::csv_fail(lines.line(), lines.error(), lines.message()));
  if (in.bad()) return unexpected(text_error{errc::io_error, line, "read error after line " + std::to_string(line)});
  return out;
}

/// Parse a table and build a `sync_table`; a validation error (unsorted
/// times, a scaled sample in interpolate mode, ...) names the sample's line.
[[nodiscard]] inline expected<correct::sync_table, text_error> load_table_csv(std::istream& in, correct::table_options opt = {},
                                                                            text_limits limits = {}) {
  auto parsed = parse_table_csv(in, limits);
  if (!parsed) return unexpected(parsed.error());
  if (auto v = correct::validate(parsed->samples, opt.mode); !v) {
    const index_error* bad = &v.error();
    if (bad->code == errc::empty_input) return unexpected(text_error{errc::empty_input, 0, "the table has no samples"});
    std::string why = to_string(bad->code);
    if (bad->code == errc::unsorted_input) why = "time is below the previous sample's time (the table must be sorted)";
    if (bad->code == errc::unsupported) why = "a scaled sample (ratio != 2^frac_bits) cannot be interpolated; use step mode";
    return unexpected(detail::csv_fail(parsed->lines[bad->index], bad->code, why));
  }
  auto t = correct::sync_table::make(std::move(parsed->samples), opt);
  if (!t) return unexpected(text_error{t.error(), 0, to_string(t.error())});
  return std::move(*t);
}

/// Write samples as the text `parse_table_csv` reads: a `# comment` line (when
/// `comment` is not empty), a header line, then one sample per line, with four
/// columns `time,offset,ratio,frac_bits` or, with `with_scaling = false`, two
/// (`time,offset`: for unscaled samples only).
inline void write_table_csv(std::ostream& out, std::span<const sync_sample> samples, std::string_view comment,
                            bool with_scaling = true) {
  if (!comment.empty()) out << "# " << comment << '\n';
  out << (with_scaling ? "time,offset,ratio,frac_bits\n" : "time,offset\n");
  for (const auto& x : samples) {
    out << raw_ns(x.guest_time) << ',' << x.offset.count();
    if (with_scaling) out << ',' << x.ratio << ',' << static_cast<unsigned>(x.frac_bits);
    out << '\n';
  }
}

}  // namespace tsync::io
