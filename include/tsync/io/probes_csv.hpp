#pragma once
/// \file
/// Probes as CSV text: the exchange format of `tsync simulate` and
/// `tsync estimate`.
///
/// Format: one probe per line, comma-separated decimal integers. Lines that
/// are blank or start with `#` are comments. The first non-comment line may be
/// a header naming the columns (any order; `t1`, `g` and `t2` required; also
/// `id`, `burst`, `vcpu`, `segment`: the segment id `tsync sync` writes, see
/// docs/outputs.md). Without a header the columns are
/// `t1,g,t2[,burst[,id[,vcpu]]]`. A missing `id` column numbers the probes
/// 0, 1, 2, ... in file order; a missing `burst` or `vcpu` column gives 0.
/// Spaces and tabs around fields and a trailing `\r` are ignored.
///
/// Every malformed line is an error carrying its 1-based line number: a wrong
/// field count, a field that is not a decimal integer of its type (t1, g, t2:
/// int64; id: uint64; burst, vcpu: uint32), an unknown or repeated column name.
/// The reader does not judge the probes (t2 < t1, duplicate ids): that is the
/// estimators' job.

#include <charconv>
#include <cstdint>
#include <istream>
#include <iterator>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/io/text.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// A CSV error: the code, the 1-based line (0: not tied to a line) and a message.

namespace detail {
enum class csv_col : std::uint8_t { t1, g, t2, id, burst, vcpu, segment };

template <class T> errc csv_int(std::string_view s, T& out) {
  if (s.empty()) return errc::malformed_number;
  if (s.front() == '+') s.remove_prefix(1);
  auto res = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  if (res.ec == std::errc::result_out_of_range) return errc::number_out_of_range;
  if (res.ec != std::errc{} || res.ptr != s.data() + s.size()) return errc::malformed_number;
  return errc::ok;
}
}  // namespace detail

/// Incremental reader: feed lines with `line()`, then `finish()`.
class probe_csv_reader {
 public:
  /// Process one line (without its '\n'). Returns an error for a malformed line.
  expected<void, text_error> line(std::string_view raw) {
    ++line_no_;
    const std::string_view t = tsync::detail::trim_text(raw);
    if (t.empty() || t.front() == '#') return {};
    std::vector<std::string_view> fields;
    std::string_view rest = t;
    while (true) {
      const auto c = rest.find(',');
      fields.push_back(tsync::detail::trim_text(rest.substr(0, c)));
      if (c == std::string_view::npos) break;
      rest = rest.substr(c + 1);
    }
    if (!seen_data_ && !have_header_ && !fields.front().empty() &&
        ((fields.front().front() >= 'a' && fields.front().front() <= 'z') ||
         (fields.front().front() >= 'A' && fields.front().front() <= 'Z')))
      return header(fields);
    seen_data_ = true;
    if (!have_header_ && cols_.empty()) {
      if (fields.size() < 3 || fields.size() > 6)
        return fail(errc::invalid_argument,
                    "expected 3 to 6 fields (t1,g,t2[,burst[,id[,vcpu]]]), got " + std::to_string(fields.size()));
      using detail::csv_col;
      const csv_col order[] = {csv_col::t1, csv_col::g, csv_col::t2, csv_col::burst, csv_col::id, csv_col::vcpu};
      cols_.assign(order, order + fields.size());
    }
    if (fields.size() != cols_.size())
      return fail(errc::invalid_argument,
                  "expected " + std::to_string(cols_.size()) + " fields, got " + std::to_string(fields.size()));
    probe_sample p;
    bool have_id = false;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      errc e = errc::ok;
      const char* name = "";
      switch (cols_[i]) {
        case detail::csv_col::t1: e = detail::csv_int(fields[i], p.t1); name = "t1"; break;
        case detail::csv_col::g: e = detail::csv_int(fields[i], p.g); name = "g"; break;
        case detail::csv_col::t2: e = detail::csv_int(fields[i], p.t2); name = "t2"; break;
        case detail::csv_col::id: e = detail::csv_int(fields[i], p.id); name = "id"; have_id = true; break;
        case detail::csv_col::burst: e = detail::csv_int(fields[i], p.burst); name = "burst"; break;
        case detail::csv_col::vcpu: e = detail::csv_int(fields[i], p.vcpu); name = "vcpu"; break;
        case detail::csv_col::segment: {
          std::uint32_t seg = 0;
          e = detail::csv_int(fields[i], seg);
          name = "segment";
          if (e == errc::ok) segments_.push_back(seg);
          break;
        }
      }
      if (e != errc::ok)
        return fail(e, std::string("field ") + std::to_string(i + 1) + " (" + name + "): '" +
                           quote_input(fields[i], 40) + "' is not a valid integer (" + to_string(e) + ")");
    }
    if (!have_id) p.id = probes_.size();
    probes_.push_back(p);
    return {};
  }
  /// The probes read so far (in file order).
  [[nodiscard]] std::vector<probe_sample> finish() && { return std::move(probes_); }
  /// The segment of each probe (the `segment` column written by `tsync
  /// sync`); empty when the file has none.
  [[nodiscard]] const std::vector<std::uint32_t>& segments() const noexcept { return segments_; }
  [[nodiscard]] std::size_t line_number() const noexcept { return line_no_; }

 private:
  expected<void, text_error> fail(errc e, std::string msg) const {
    return unexpected(text_error{e, line_no_, std::move(msg)});
  }
  expected<void, text_error> header(const std::vector<std::string_view>& fields) {
    using detail::csv_col;
    bool seen[7] = {};
    for (auto f : fields) {
      csv_col c{};
      if (f == "t1") c = csv_col::t1;
      else if (f == "g") c = csv_col::g;
      else if (f == "t2") c = csv_col::t2;
      else if (f == "id") c = csv_col::id;
      else if (f == "burst") c = csv_col::burst;
      else if (f == "vcpu") c = csv_col::vcpu;
      else if (f == "segment") c = csv_col::segment;
      else return fail(errc::invalid_argument, "unknown column '" + quote_input(f, 40) + "' in the header");
      if (seen[static_cast<int>(c)])
        return fail(errc::invalid_argument, "column '" + quote_input(f, 40) + "' appears twice in the header");
      seen[static_cast<int>(c)] = true;
      cols_.push_back(c);
    }
    if (!seen[0] || !seen[1] || !seen[2]) return fail(errc::invalid_argument, "the header must name t1, g and t2");
    have_header_ = true;
    return {};
  }

  std::vector<detail::csv_col> cols_{};
  std::vector<probe_sample> probes_{};
  std::vector<std::uint32_t> segments_{};
  std::size_t line_no_ = 0;
  bool have_header_ = false;
  bool seen_data_ = false;
};

/// Read probes from CSV text.
[[nodiscard]] inline expected<std::vector<probe_sample>, text_error> read_probes_csv(std::string_view text) {
  probe_csv_reader r;
  if (text.substr(0, utf8_bom.size()) == utf8_bom) text.remove_prefix(utf8_bom.size());
  while (!text.empty()) {
    const auto nl = text.find('\n');
    if (auto ok = r.line(text.substr(0, nl)); !ok) return unexpected(ok.error());
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return std::move(r).finish();
}

/// Probes and, when the file has a `segment` column, the segment of each.
struct probes_and_segments {
  std::vector<probe_sample> probes;
  std::vector<std::uint32_t> segments;  ///< empty, or one per probe
};

/// Read probes and their segment column from a stream (errors as `read_probes_csv`).
[[nodiscard]] inline expected<probes_and_segments, text_error> read_probes_csv_segments(std::istream& in,
                                                                                       text_limits limits = {}) {
  probe_csv_reader r;
  std::string line;
  line_reader lines(in, limits);
  while (lines.next(line))
    if (auto ok = r.line(line); !ok) return unexpected(ok.error());
  if (lines.error() != errc::ok)
    return unexpected(text_error{lines.error(), lines.line(), lines.message()});
  if (in.bad()) return unexpected(text_error{errc::io_error, 0, "read error"});
  probes_and_segments out;
  out.segments = r.segments();
  out.probes = std::move(r).finish();
  return out;
}

/// Read probes from a stream (an I/O failure other than end of file is
/// `errc::io_error` at line 0).
/// The input is read within `limits` (see io/text.hpp).
[[nodiscard]] inline expected<std::vector<probe_sample>, text_error> read_probes_csv(std::istream& in,
                                                                                   text_limits limits = {}) {
  auto r = read_probes_csv_segments(in, limits);
  if (!r) return unexpected(std::move(r.error()));
  return std::move(r->probes);
}

/// Write probes as CSV with a comment, a header line and the columns
/// `t1,g,t2,burst,id,vcpu` (or only `t1,g,t2` when `minimal`).
/// `comment` lines are prefixed with "# ".
inline void write_probes_csv(std::ostream& out, std::span<const probe_sample> probes, std::string_view comment = {},
                             bool minimal = false) {
  std::string_view c = comment;
  while (!c.empty()) {
    const auto nl = c.find('\n');
    out << "# " << c.substr(0, nl) << '\n';
    c = nl == std::string_view::npos ? std::string_view{} : c.substr(nl + 1);
  }
  out << (minimal ? "t1,g,t2\n" : "t1,g,t2,burst,id,vcpu\n");
  std::string buf;
  for (const auto& p : probes) {
    buf.clear();
    buf += std::to_string(p.t1);
    buf += ',';
    buf += std::to_string(p.g);
    buf += ',';
    buf += std::to_string(p.t2);
    if (!minimal) {
      buf += ',';
      buf += std::to_string(p.burst);
      buf += ',';
      buf += std::to_string(p.id);
      buf += ',';
      buf += std::to_string(p.vcpu);
    }
    buf += '\n';
    out << buf;
  }
}

}  // namespace tsync::io
