#pragma once
/// \file
/// A sync table as text: one sample per line, `time,offset[,ratio,frac_bits]`
/// (decimal integers; time and offset signed 64-bit, ratio unsigned 64-bit,
/// frac_bits 0..63). Blank lines and lines whose first non-blank character is
/// `#` are skipped; spaces around fields are allowed. A first data line whose
/// first field is the word `time` is a header: it names the columns, in any
/// order, from `time`, `offset` (both required), `ratio`, `frac_bits`,
/// `offset_lo`, `offset_hi` (the hard interval of the offset, absolute:
/// `offset_lo <= host − guest <= offset_hi`, both or neither; both empty: no
/// interval), `segment` (the segment id: samples of different segments are
/// never interpolated between) and `epoch` (segments of different epochs
/// repeat guest times: after a reboot); docs/outputs.md. Without a header the columns are positional.
/// Without ratio and frac_bits a sample is unscaled (ratio 1, frac_bits 0).
/// Old files (no header, or `time,offset[,ratio,frac_bits]`) read as before.
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
  std::vector<std::uint32_t> segments; ///< segment of each sample; empty without a `segment` column
  std::vector<std::uint32_t> epochs;   ///< its epoch (`epoch` column, 0 without; same length as `segments`)
};

namespace detail {
inline csv_error csv_fail(std::size_t line, errc code, const std::string& what) {
  return {code, line, "line " + std::to_string(line) + ": " + what};
}
}  // namespace detail

/// Parse a table from text (see the file comment for the format).
/// The input is read within `limits` (see io/text.hpp); a UTF-8 byte-order
/// mark before the first line is skipped.
namespace detail {
enum class table_col : std::uint8_t { time, offset, ratio, frac_bits, offset_lo, offset_hi, segment, epoch };

/// Column layout from a header line; an error names the bad column.
inline expected<std::vector<table_col>, std::string> table_columns(const std::vector<std::string_view>& f) {
  static constexpr std::string_view names[] = {"time",      "offset",    "ratio",   "frac_bits",
                                               "offset_lo", "offset_hi", "segment", "epoch"};
  std::vector<table_col> cols;
  unsigned seen = 0;
  for (auto n : f) {
    std::size_t k = 0;
    while (k < 8 && names[k] != n) ++k;
    if (k == 8) return unexpected("unknown column '" + quote_input(n, 40) + "'");
    if (seen & (1u << k)) return unexpected("column '" + std::string(n) + "' appears twice");
    seen |= 1u << k;
    cols.push_back(static_cast<table_col>(k));
  }
  if ((seen & 3u) != 3u) return unexpected(std::string("the header must name 'time' and 'offset'"));
  if (((seen >> 2) & 1u) != ((seen >> 3) & 1u)) return unexpected(std::string("'ratio' and 'frac_bits' go together"));
  if (((seen >> 4) & 1u) != ((seen >> 5) & 1u)) return unexpected(std::string("'offset_lo' and 'offset_hi' go together"));
  return cols;
}

inline std::vector<std::string_view> split_fields(std::string_view t) {
  std::vector<std::string_view> f;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = t.find(',', start);
    f.push_back(tsync::detail::trim_text(t.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                                     : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return f;
}

/// One data line into `out` (its fields `f` in layout `cols`).
inline expected<void, csv_error> table_row(const std::vector<std::string_view>& f, const std::vector<table_col>& cols,
                                           std::size_t line, csv_table& out) {
  static constexpr const char* names[] = {"time", "offset", "ratio", "frac_bits", "offset_lo", "offset_hi", "segment", "epoch"};
  sync_sample s;
  std::int64_t time = 0, off = 0, lo = 0, hi = 0;
  std::uint32_t seg = 0, epoch = 0;
  bool have_bounds = false, have_seg = false;
  for (std::size_t i = 0; i < f.size(); ++i) {
    errc e = errc::ok;
    unsigned frac = 0;
    switch (cols[i]) {
      case table_col::time: e = tsync::detail::parse_decimal(f[i], time); break;
      case table_col::offset: e = tsync::detail::parse_decimal(f[i], off); break;
      case table_col::ratio: e = tsync::detail::parse_decimal(f[i], s.ratio); break;
      case table_col::frac_bits:
        e = tsync::detail::parse_decimal(f[i], frac);
        if (e == errc::ok && frac > 63) e = errc::bad_frac_bits;
        s.frac_bits = static_cast<std::uint8_t>(frac);
        break;
      case table_col::offset_lo:  // empty: this sample has no interval
        if (!f[i].empty()) {
          e = tsync::detail::parse_decimal(f[i], lo);
          have_bounds = true;
        }
        break;
      case table_col::offset_hi:
        if (!f[i].empty()) e = tsync::detail::parse_decimal(f[i], hi);
        break;
      case table_col::segment: e = tsync::detail::parse_decimal(f[i], seg); have_seg = true; break;
      case table_col::epoch: e = tsync::detail::parse_decimal(f[i], epoch); break;
    }
    if (e != errc::ok)
      return unexpected(csv_fail(line, e, std::string(names[static_cast<std::size_t>(cols[i])]) + " '" +
                                              quote_input(f[i], 40) + "': " + to_string(e)));
  }
  if (s.ratio == 0) return unexpected(csv_fail(line, errc::zero_ratio, "ratio is zero"));
  if (have_bounds) {
    if (!(lo <= off && off <= hi))
      return unexpected(csv_fail(line, errc::invalid_argument, "offset_lo <= offset <= offset_hi does not hold"));
    s.bounds = offset_interval{lo - off, hi - off};
  }
  s.guest_time = at_ns<guest>(time);
  s.offset = guest_to_host(off);
  out.samples.push_back(s);
  out.lines.push_back(line);
  if (have_seg) {
    out.segments.push_back(seg);
    out.epochs.push_back(epoch);
  }
  return {};
}
}  // namespace detail

[[nodiscard]] inline expected<csv_table, csv_error> parse_table_csv(std::istream& in, text_limits limits = {}) {
  csv_table out;
  std::string raw;
  std::size_t line = 0;
  bool seen_data = false;
  std::vector<detail::table_col> cols;
  line_reader lines(in, limits);
  while (lines.next(raw)) {
    line = lines.line();
    const std::string_view t = tsync::detail::trim_text(raw);
    if (t.empty() || t.front() == '#') continue;
    const auto f = detail::split_fields(t);
    if (!seen_data && !f.empty() && f[0] == "time") {  // header line
      seen_data = true;
      auto c = detail::table_columns(f);
      if (!c) return unexpected(detail::csv_fail(line, errc::invalid_argument, "header: " + c.error()));
      // The old headers (`time,offset` and `time,offset,ratio,frac_bits`) keep
      // the old rule: each row has 2 or 4 positional fields.
      using detail::table_col;
      const bool old_header = (c->size() == 2 || c->size() == 4) && (*c)[0] == table_col::time &&
                              (*c)[1] == table_col::offset &&
                              (c->size() == 2 || ((*c)[2] == table_col::ratio && (*c)[3] == table_col::frac_bits));
      if (!old_header) cols = std::move(*c);
      continue;
    }
    seen_data = true;
    if (cols.empty() && f.size() != 2 && f.size() != 4)
      return unexpected(detail::csv_fail(line, errc::invalid_argument,
                                         "expected 'time,offset' or 'time,offset,ratio,frac_bits', found " +
                                             std::to_string(f.size()) + " field(s)"));
    if (!cols.empty() && f.size() != cols.size())
      return unexpected(detail::csv_fail(line, errc::invalid_argument,
                                         "expected " + std::to_string(cols.size()) + " fields (as the header), found " +
                                             std::to_string(f.size())));
    using detail::table_col;
    const std::vector<table_col> positional =
        f.size() == 4 ? std::vector<table_col>{table_col::time, table_col::offset, table_col::ratio, table_col::frac_bits}
                      : std::vector<table_col>{table_col::time, table_col::offset};
    if (auto r = detail::table_row(f, cols.empty() ? positional : cols, line, out); !r) return unexpected(r.error());
  }
  if (lines.error() != errc::ok) return unexpected(detail::csv_fail(lines.line(), lines.error(), lines.message()));
  if (in.bad()) return unexpected(csv_error{errc::io_error, line, "read error after line " + std::to_string(line)});
  return out;
}

/// Parse a table and build a `sync_table`; a validation error (unsorted
/// times, a scaled sample in interpolate mode, ...) names the sample's line.
[[nodiscard]] inline expected<correct::sync_table, csv_error> load_table_csv(std::istream& in, correct::table_options opt = {},
                                                                            text_limits limits = {}) {
  auto parsed = parse_table_csv(in, limits);
  if (!parsed) return unexpected(parsed.error());
  if (auto bad = correct::check_samples(parsed->samples, opt.mode)) {
    if (bad->code == errc::empty_input) return unexpected(csv_error{errc::empty_input, 0, "the table has no samples"});
    std::string why = to_string(bad->code);
    if (bad->code == errc::unsorted_input) why = "time is below the previous sample's time (the table must be sorted)";
    if (bad->code == errc::unsupported) why = "a scaled sample (ratio != 2^frac_bits) cannot be interpolated; use step mode";
    return unexpected(detail::csv_fail(parsed->lines[bad->index], bad->code, why));
  }
  auto t = correct::sync_table::make(std::move(parsed->samples), opt);
  if (!t) return unexpected(csv_error{t.error(), 0, to_string(t.error())});
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

/// The header comment lines every output file starts with (docs/outputs.md):
/// `# sign: host = guest + offset`, `# unit: ...`, `# host_clock: ...`,
/// `# guest_clock: ...`, then each of `extra` as `# ` + line.
inline void write_output_header(std::ostream& out, std::string_view unit, std::string_view host_clock,
                                std::string_view guest_clock, std::span<const std::string> extra = {}) {
  out << "# sign: host = guest + offset\n# unit: " << unit << "\n# host_clock: " << host_clock
      << "\n# guest_clock: " << guest_clock << '\n';
  for (const auto& l : extra) out << "# " << l << '\n';
}

/// A segmented table with hard bounds, `time,offset,offset_lo,offset_hi,segment,epoch`
/// (unscaled samples), preceded by the `header` lines (`# ` added).
/// `segments` and `epochs` have one entry per sample (missing ones are 0). A sample without
/// bounds leaves `offset_lo` and `offset_hi` empty.
inline void write_segmented_table_csv(std::ostream& out, std::span<const sync_sample> samples,
                                      std::span<const std::uint32_t> segments, std::span<const std::uint32_t> epochs,
                                      std::span<const std::string> header) {
  for (const auto& l : header) out << "# " << l << '\n';
  out << "time,offset,offset_lo,offset_hi,segment,epoch\n";
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& x = samples[i];
    const std::int64_t off = x.offset.count();
    out << raw_ns(x.guest_time) << ',' << off << ',';
    if (x.bounds) out << off + x.bounds->lo << ',' << off + x.bounds->hi;
    else out << ',';
    out << ',' << (i < segments.size() ? segments[i] : 0u) << ',' << (i < epochs.size() ? epochs[i] : 0u) << '\n';
  }
}

}  // namespace tsync::io
