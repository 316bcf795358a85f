#pragma once
/// \file
/// Merge the events of a host trace.dat file and of its guests' trace.dat files
/// into one host-time timeline, streaming: a k-way merge over every (file,
/// buffer, CPU) stream, whose memory is bounded by the number of streams, not by
/// the trace. Guest timestamps are placed on the host timeline by a
/// caller-supplied function of (vCPU, raw guest timestamp), which returns the
/// host time and, when the mapping has one, the hard interval of host times the
/// event may have happened at (the tsync CLI passes its models or sync tables).
/// Host timestamps are used as they are (raw, in the host's trace clock).
///
/// Two writers: `report_text_writer` (the line layout of `trace-cmd report`
/// with several input files: a right-aligned tag per input, comm-pid, [cpu],
/// seconds.nanoseconds, event name, info) and `chrome_json_writer` (Chrome
/// trace-event JSON, opened by Perfetto and chrome://tracing: the host and each
/// guest are processes, each CPU / vCPU a thread, every event an instant event
/// whose args carry comm, pid, raw timestamp, the event's fields read straight
/// from the record (libtraceevent's formatted info text on request: slower) and,
/// for guest events with one, the hard interval). Both write to a FILE* or to an
/// `output_sink` (e.g. an atomic file) in 256 KiB blocks. Every write is checked;
/// the first failure ends the merge with an io_error naming the output.
///
/// Speed (bench/tracecmd, CPU time on a 100 MB trace): JSON about 100 MB/s,
/// text about 45 MB/s, bound by libtraceevent's print-format evaluation.
///
/// Order: the output is in host-time order when each stream's mapped times do
/// not decrease (raw ring-buffer timestamps never do; a guest mapping with a
/// negative offset step can). Events that come out earlier than the event
/// written before them are counted in `merge_stats::out_of_order`.
///
/// Needs the optional CMake target `tsync::tracecmd` (see tracecmd_events.hpp).

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/io/tracecmd_events.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// Where a guest event lands on the host timeline.
struct host_placement {
  std::int64_t host_ns = 0;  ///< the corrected time, in the host trace's clock
  bool has_hard = false;     ///< true when [hard_lo, hard_hi] is known
  std::int64_t hard_lo = 0;  ///< earliest host time the event may have happened at
  std::int64_t hard_hi = 0;  ///< latest host time the event may have happened at
};

/// The mapping of one guest file: (vCPU, raw guest timestamp) -> host placement.
/// An error stops the merge (the message names the file, vCPU and timestamp).
using guest_time_map = std::function<expected<host_placement, errc>(std::uint32_t vcpu, std::uint64_t guest_ts)>;

/// One input of a merge. `file` is not owned and must outlive the merge.
struct merge_input {
  tracecmd_file* file = nullptr;
  std::string name;    ///< process name and text tag ("host", the guest's name)
  guest_time_map map;  ///< empty for the host file (its raw timestamps are host time)
};

/// What a merge wrote.
struct merge_stats {
  std::uint64_t events = 0;        ///< events written
  std::uint64_t out_of_order = 0;  ///< events written with a time below the previous event's
  std::uint64_t with_hard = 0;     ///< guest events written with a hard interval
  std::vector<std::uint64_t> per_input;  ///< events written per input
};

/// Where a writer's bytes go when it does not write a FILE*: called with blocks
/// of output in order; a nonzero error code ends the merge with io_error.
using output_sink = std::function<std::error_code(std::string_view)>;

/// One event as a writer sees it.
struct merged_event {
  std::uint32_t input = 0;  ///< index in the inputs
  const tracecmd_event* ev = nullptr;
  tracecmd_buffer* buffer = nullptr;  ///< the buffer the event came from (for info())
  host_placement at;  ///< host time (and hard interval) of the event
  [[nodiscard]] std::string_view info() const noexcept { return buffer->info(*ev); }
};

namespace detail {

/// Buffered, checked writes to a FILE* or to a sink function: events are
/// formatted straight into `buf()` and handed on in blocks of 256 KiB. The first
/// failure is kept (with its errno) and every later write is dropped.
class checked_out {
 public:
  static constexpr std::size_t block = std::size_t{256} << 10;
  explicit checked_out(std::FILE* f, std::string what) : f_(f), what_(std::move(what)) { buf_.reserve(block + 4096); }
  explicit checked_out(output_sink sink, std::string what) : sink_(std::move(sink)), what_(std::move(what)) {
    buf_.reserve(block + 4096);
  }
  /// The buffer to append to; call `done()` after each appended event.
  [[nodiscard]] std::string& buf() noexcept { return buf_; }
  void done() noexcept {
    if (buf_.size() >= block) drain();
  }
  void put(std::string_view s) {
    buf_ += s;
    done();
  }
  void flush() noexcept {
    drain();
    if (failed_ || f_ == nullptr) return;
    if (std::fflush(f_) != 0 || std::ferror(f_) != 0) fail(errno);
  }
  [[nodiscard]] bool ok() const noexcept { return !failed_; }
  [[nodiscard]] text_error error() const {
    return text_error{errc::io_error, 0, what_ + ": write failed: " + std::strerror(errno_ != 0 ? errno_ : EIO)};
  }

 private:
  void drain() noexcept {
    if (!failed_ && !buf_.empty()) {
      if (f_ != nullptr) {
        if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) fail(errno);
      } else if (sink_) {
        if (const std::error_code ec = sink_(buf_)) fail(ec.value());
      }
    }
    buf_.clear();
  }
  void fail(int e) noexcept {
    failed_ = true;
    errno_ = e;
  }
  std::FILE* f_ = nullptr;
  output_sink sink_;
  std::string what_;
  std::string buf_;
  bool failed_ = false;
  int errno_ = 0;
};

/// Append a string literal (its length known at compile time: no strlen).
template <std::size_t N>
inline void lit(std::string& o, const char (&s)[N]) {
  o.append(s, N - 1);
}

/// Decimal digits of `v` at the end of `b[0..24)`; returns where they start.
inline char* format_uint(char* end, std::uint64_t v) noexcept {
  char* p = end;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return p;
}
inline void append_uint(std::string& o, std::uint64_t v) {
  char b[24];
  char* const end = b + sizeof b;
  const char* p = format_uint(end, v);
  o.append(p, static_cast<std::size_t>(end - p));
}
/// |v| as uint64, INT64_MIN included, without an unsigned wrap (`~u + 1` of a
/// negative value's two's complement, never applied to 0).
[[nodiscard]] constexpr std::uint64_t magnitude(std::int64_t v) noexcept {
  return v < 0 ? ~static_cast<std::uint64_t>(v) + 1u : static_cast<std::uint64_t>(v);
}
inline void append_int(std::string& o, std::int64_t v) {
  char b[24];
  char* const end = b + sizeof b;
  char* p = format_uint(end, magnitude(v));
  if (v < 0) *--p = '-';
  o.append(p, static_cast<std::size_t>(end - p));
}
/// |v| / div and |v| % div with a sign, for "s.frac" printing of ns values.
inline void append_fixed(std::string& o, std::int64_t v, std::uint64_t div, int frac_digits, std::size_t int_width) {
  const bool neg = v < 0;
  const std::uint64_t a = magnitude(v);
  char b[48];
  char* const end = b + sizeof b;
  char* p = end;
  std::uint64_t f = a % div;
  for (int i = 0; i < frac_digits; ++i) {
    *--p = static_cast<char>('0' + f % 10);
    f /= 10;
  }
  *--p = '.';
  char* const dot = p;
  p = format_uint(p, a / div);
  if (neg) *--p = '-';
  const auto int_len = static_cast<std::size_t>(dot - p);
  if (int_len < int_width) o.append(int_width - int_len, ' ');
  o.append(p, static_cast<std::size_t>(end - p));
}
inline void append_padded_left(std::string& o, std::string_view s, std::size_t width) {
  if (s.size() < width) o.append(width - s.size(), ' ');
  o += s;
}

/// Append `s` as the inside of a JSON string: quotes, backslashes and control
/// characters escaped; valid UTF-8 passes through; every byte of an invalid
/// UTF-8 sequence becomes \u00XX (its Latin-1 reading), so the output is
/// always valid JSON.
inline void append_json_escaped(std::string& o, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto esc = [&](unsigned char c) {
    detail::lit(o, "\\u00");
    o.push_back(hex[c >> 4]);
    o.push_back(hex[c & 15]);
  };
  while (i < n) {
    std::size_t run = i;  // the run of plain printable ASCII goes in one append
    while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\') ++run;
    if (run != i) {
      o.append(s.data() + i, run - i);
      i = run;
      if (i == n) break;
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == '"') detail::lit(o, "\\\"");
      else if (c == '\\') detail::lit(o, "\\\\");
      else if (c == '\n') detail::lit(o, "\\n");
      else if (c == '\t') detail::lit(o, "\\t");
      else if (c < 0x20 || c == 0x7f) esc(c);
      else o.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    }
    bool valid = len != 0 && i + len <= n;
    for (std::size_t k = 1; valid && k < len; ++k) {
      const unsigned char d = p[i + k];
      if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xbf)) valid = false;
    }
    if (valid) {
      o.append(s.data() + i, len);
      i += len;
    } else {
      esc(c);
      ++i;
    }
  }
}

/// Append a C string of at most `max` bytes (it ends at its first NUL) as a
/// quoted JSON string.
inline void append_c_string(std::string& o, const char* p, std::size_t max) {
  std::size_t n = 0;
  while (n < max && p[n] != '\0') ++n;
  o.push_back('"');
  append_json_escaped(o, std::string_view(p, n));
  o.push_back('"');
}

/// How one field of an event format is written as JSON (prepared once per format).
struct json_field {
  enum class kind : std::uint8_t { unsigned_int, signed_int, pointer, fixed_string, dynamic_string, array, other };
  std::string key;  ///< `,"name":` ready to append
  kind k = kind::other;
  std::uint32_t offset = 0, size = 0, elem = 0;
  bool relative = false;  ///< __rel_loc: the offset counts from the end of the field
};

/// The JSON fields of each event format of one file, built on first sight of the
/// format and dropped when the file is reopened (the formats then move).
class json_field_cache {
 public:
  [[nodiscard]] const std::vector<json_field>& of(const tracecmd_file& f, const tep_event* ev) {
    if (f.reopens() != generation_) {
      map_.clear();
      generation_ = f.reopens();
    }
    auto it = map_.find(ev);
    if (it != map_.end()) return it->second;
    std::vector<json_field> out;
    for (const tep_format_field* x = ev->format.fields; x != nullptr; x = x->next) {
      json_field j;
      j.key = "\"";
      append_json_escaped(j.key, x->name != nullptr ? std::string_view(x->name) : std::string_view());
      j.key += "\":";
      j.offset = static_cast<std::uint32_t>(x->offset);
      j.size = static_cast<std::uint32_t>(x->size);
      j.elem = static_cast<std::uint32_t>(x->elementsize);
      const unsigned long fl = x->flags;
      j.relative = (fl & TEP_FIELD_IS_RELATIVE) != 0;
      if ((fl & TEP_FIELD_IS_DYNAMIC) != 0)
        j.k = (fl & TEP_FIELD_IS_STRING) != 0 ? json_field::kind::dynamic_string : json_field::kind::other;
      else if ((fl & TEP_FIELD_IS_STRING) != 0)
        j.k = json_field::kind::fixed_string;
      else if ((fl & TEP_FIELD_IS_ARRAY) != 0)
        j.k = (j.elem == 1 || j.elem == 2 || j.elem == 4 || j.elem == 8) ? json_field::kind::array : json_field::kind::other;
      else if (j.size == 1 || j.size == 2 || j.size == 4 || j.size == 8)
        j.k = (fl & TEP_FIELD_IS_POINTER) != 0 ? json_field::kind::pointer
              : (fl & TEP_FIELD_IS_SIGNED) != 0 ? json_field::kind::signed_int
                                                 : json_field::kind::unsigned_int;
      if (j.k != json_field::kind::other) out.push_back(std::move(j));
    }
    return map_.emplace(ev, std::move(out)).first->second;
  }

 private:
  std::uint64_t generation_ = 0;
  std::unordered_map<const tep_event*, std::vector<json_field>> map_;
};

inline std::int64_t sign_extend(std::uint64_t v, std::uint32_t size) noexcept {
  const unsigned bits = size * 8U;
  if (bits >= 64) return static_cast<std::int64_t>(v);
  const std::uint64_t m = std::uint64_t{1} << (bits - 1);
  return static_cast<std::int64_t>((v ^ m) - m);
}

inline void append_hex(std::string& o, std::uint64_t v) {
  static constexpr char hex[] = "0123456789abcdef";
  char b[16];
  int n = 0;
  do {
    b[n++] = hex[v & 15];
    v >>= 4;
  } while (v != 0);
  detail::lit(o, "\"0x");
  while (n > 0) o.push_back(b[--n]);
  o.push_back('"');
}

/// Append the fields of `rec` as `"name":value` pairs separated by commas (numbers as JSON numbers,
/// pointers as "0x..." strings, strings escaped, small arrays as arrays).
inline void append_json_fields(std::string& o, tep_handle* tep, const tep_record* rec, const std::vector<json_field>& fields) {
  const auto* data = static_cast<const char*>(rec->data);
  const auto size = static_cast<std::uint32_t>(rec->size > 0 ? rec->size : 0);
  bool first = true;
  auto key = [&](const json_field& f) {
    if (!first) o.push_back(',');
    first = false;
    o += f.key;
  };
  for (const json_field& f : fields) {
    if (f.k != json_field::kind::dynamic_string && (f.offset > size || f.size > size - f.offset)) continue;
    switch (f.k) {
      case json_field::kind::unsigned_int:
        key(f);
        append_uint(o, tep_read_number(tep, data + f.offset, static_cast<int>(f.size)));
        break;
      case json_field::kind::signed_int:
        key(f);
        append_int(o, sign_extend(tep_read_number(tep, data + f.offset, static_cast<int>(f.size)), f.size));
        break;
      case json_field::kind::pointer:
        key(f);
        append_hex(o, tep_read_number(tep, data + f.offset, static_cast<int>(f.size)));
        break;
      case json_field::kind::fixed_string:
        key(f);
        append_c_string(o, data + f.offset, f.size);
        break;
      case json_field::kind::dynamic_string: {
        if (f.offset > size || size - f.offset < 4) continue;
        const auto loc = static_cast<std::uint32_t>(tep_read_number(tep, data + f.offset, 4));
        std::uint32_t at = loc & 0xffffU;
        const std::uint32_t len = loc >> 16;
        if (f.relative) at += f.offset + 4;
        if (at > size || len > size - at) continue;
        key(f);
        append_c_string(o, data + at, len);
        break;
      }
      case json_field::kind::array: {
        key(f);
        o.push_back('[');
        for (std::uint32_t k = 0; k + f.elem <= f.size; k += f.elem) {
          if (k != 0) o.push_back(',');
          append_uint(o, tep_read_number(tep, data + f.offset + k, static_cast<int>(f.elem)));
        }
        o.push_back(']');
        break;
      }
      case json_field::kind::other:
        break;
    }
  }
}

}  // namespace detail

/// Writes merged events in `trace-cmd report`'s layout for several inputs:
/// `<tag>: <comm>-<pid> [<cpu>] <s>.<ns>: <event>: <info>`, tags right-aligned
/// to the longest input name, times in host nanoseconds as seconds with 9
/// decimals; a "CPU:n [N EVENTS DROPPED]" line before an event whose CPU lost events.
class report_text_writer {
 public:
  /// `what` names the output in error messages.
  explicit report_text_writer(std::FILE* out, std::string what = "output") : out_(out, std::move(what)) {}
  explicit report_text_writer(output_sink out, std::string what) : out_(std::move(out), std::move(what)) {}

  [[nodiscard]] bool begin(std::span<const merge_input> inputs) {
    width_ = 0;
    for (const auto& in : inputs) width_ = std::max(width_, in.name.size());
    names_.clear();
    for (const auto& in : inputs) names_.push_back(in.name);
    return out_.ok();
  }
  [[nodiscard]] bool write(const merged_event& m) {
    const tracecmd_event& e = *m.ev;
    std::string& o = out_.buf();
    if (e.missed_events != 0) {
      detail::append_padded_left(o, names_[m.input], width_);
      detail::lit(o, ": CPU:");
      detail::append_uint(o, e.cpu);
      if (e.missed_events > 0) {
        detail::lit(o, " [");
        detail::append_int(o, e.missed_events);
        detail::lit(o, " EVENTS DROPPED]\n");
      } else {
        detail::lit(o, " [EVENTS DROPPED]\n");
      }
    }
    detail::append_padded_left(o, names_[m.input], width_);
    detail::lit(o, ": ");
    detail::append_padded_left(o, e.comm, 16);
    o.push_back('-');
    const std::size_t pid_at = o.size();
    detail::append_int(o, e.pid);
    if (o.size() - pid_at < 5) o.append(5 - (o.size() - pid_at), ' ');
    detail::lit(o, " [");
    if (e.cpu < 100) o.push_back('0');
    if (e.cpu < 10) o.push_back('0');
    detail::append_uint(o, e.cpu);
    detail::lit(o, "] ");
    detail::append_fixed(o, m.at.host_ns, 1000000000U, 9, 5);
    detail::lit(o, ": ");
    const std::string_view name = e.name.empty() ? std::string_view("(NULL)") : e.name;
    o += name;
    detail::lit(o, ": ");
    if (name.size() < 20) o.append(20 - name.size(), ' ');
    o += m.info();
    o.push_back('\n');
    out_.done();
    return out_.ok();
  }
  [[nodiscard]] bool end() {
    out_.flush();
    return out_.ok();
  }
  [[nodiscard]] text_error error() const { return out_.error(); }

 private:
  detail::checked_out out_;
  std::size_t width_ = 0;
  std::vector<std::string> names_;
};

/// Writes merged events as Chrome trace-event JSON (the "JSON Object Format":
/// `{"displayTimeUnit":"ns","traceEvents":[...]}`). Input i is process i+1,
/// named after the input; CPU/vCPU c is its thread c, named "CPU c" (host) or
/// "vCPU c" (guests). Each event is an instant event ("ph":"i", thread scope)
/// with "ts" in microseconds (3 decimals: ns resolution), "name" = event name,
/// "cat" = event system, and args {comm, pid, raw_ts, [info,] fields {...}[, hard_lo_ns,
/// hard_hi_ns]}.
class chrome_json_writer {
 public:
  explicit chrome_json_writer(std::FILE* out, std::string what = "output") : out_(out, std::move(what)) {}
  explicit chrome_json_writer(output_sink out, std::string what) : out_(std::move(out), std::move(what)) {}
  /// Also write libtraceevent's formatted text (what `trace-cmd report` prints
  /// after the event name) as args.info: slower (libtraceevent's print format).
  void set_info(bool on) noexcept { info_ = on; }

  [[nodiscard]] bool begin(std::span<const merge_input> inputs) {
    line_ = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
    first_ = true;
    files_.clear();
    for (const auto& in : inputs) files_.push_back(in.file);
    caches_.assign(inputs.size(), detail::json_field_cache{});
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const bool host = !inputs[i].map;
      meta(line_, i, -1, "process_name", inputs[i].name);
      std::uint32_t cpus = 0;
      for (std::size_t b = 0; b < inputs[i].file->buffer_count(); ++b)
        cpus = std::max(cpus, inputs[i].file->buffer(b).cpu_count());
      for (std::uint32_t c = 0; c < cpus; ++c)
        meta(line_, i, static_cast<std::int64_t>(c), "thread_name", (host ? "CPU " : "vCPU ") + std::to_string(c));
    }
    out_.put(line_);
    return out_.ok();
  }
  [[nodiscard]] bool write(const merged_event& m) {
    const tracecmd_event& e = *m.ev;
    std::string& o = out_.buf();
    sep(o);
    detail::lit(o, "{\"name\":\"");
    detail::append_json_escaped(o, e.name.empty() ? std::string_view("(NULL)") : e.name);
    detail::lit(o, "\",\"cat\":\"");
    detail::append_json_escaped(o, e.system);
    detail::lit(o, "\",\"ph\":\"i\",\"s\":\"t\",\"ts\":");
    detail::append_fixed(o, m.at.host_ns, 1000U, 3, 0);
    detail::lit(o, ",\"pid\":");
    detail::append_uint(o, m.input + 1U);
    detail::lit(o, ",\"tid\":");
    detail::append_uint(o, e.cpu);
    detail::lit(o, ",\"args\":{\"comm\":\"");
    detail::append_json_escaped(o, e.comm);
    detail::lit(o, "\",\"pid\":");
    detail::append_int(o, e.pid);
    detail::lit(o, ",\"raw_ts\":");
    detail::append_uint(o, e.ts);
    if (e.missed_events != 0) {
      detail::lit(o, ",\"missed_events\":");
      detail::append_int(o, e.missed_events);
    }
    if (info_) {
      detail::lit(o, ",\"info\":\"");
      detail::append_json_escaped(o, m.info());
      detail::lit(o, "\"");
    }
    if (e.format != nullptr && e.record != nullptr) {
      detail::lit(o, ",\"fields\":{");
      detail::append_json_fields(o, m.buffer->tep(), e.record, caches_[m.input].of(*files_[m.input], e.format));
      o.push_back('}');
    }
    if (m.at.has_hard) {
      detail::lit(o, ",\"hard_lo_ns\":");
      detail::append_int(o, m.at.hard_lo);
      detail::lit(o, ",\"hard_hi_ns\":");
      detail::append_int(o, m.at.hard_hi);
    }
    detail::lit(o, "}}");
    out_.done();
    return out_.ok();
  }
  [[nodiscard]] bool end() {
    out_.put("\n]}\n");
    out_.flush();
    return out_.ok();
  }
  [[nodiscard]] text_error error() const { return out_.error(); }

 private:
  void sep(std::string& o) {
    if (!first_) detail::lit(o, ",\n");
    first_ = false;
  }
  void meta(std::string& o, std::size_t input, std::int64_t tid, const char* what, std::string_view name) {
    sep(o);
    detail::lit(o, "{\"name\":\"");
    o += what;
    detail::lit(o, "\",\"ph\":\"M\",\"pid\":");
    detail::append_uint(o, input + 1U);
    if (tid >= 0) {
      detail::lit(o, ",\"tid\":");
      detail::append_int(o, tid);
    }
    detail::lit(o, ",\"args\":{\"name\":\"");
    detail::append_json_escaped(o, name);
    detail::lit(o, "\"}}");
  }
  detail::checked_out out_;
  std::string line_;
  bool first_ = true;
  bool info_ = false;
  std::vector<const tracecmd_file*> files_;
  std::vector<detail::json_field_cache> caches_;
};

/// Merge `inputs` into `writer` (report_text_writer, chrome_json_writer, or any
/// type with the same begin/write/end/error members). Reads every input from
/// its current position to its end. Errors: invalid_argument (a null file), the
/// mapping's error (message names input, vCPU and raw timestamp),
/// out_of_range (a host raw timestamp above INT64_MAX), io_error (a write).
template <class Writer>
[[nodiscard]] expected<merge_stats, text_error> merge_events(std::span<const merge_input> inputs, Writer& writer) {
  merge_stats st;
  st.per_input.assign(inputs.size(), 0);
  struct stream {
    std::uint32_t input;
    tracecmd_buffer* buffer;
    std::uint32_t cpu;
    host_placement at;
  };
  std::vector<stream> streams;
  detail::stream_heap heap;

  // Place the head event of stream s; false with `err` set on a mapping error.
  text_error err;
  auto place = [&](stream& s, const tracecmd_event& e) -> bool {
    const merge_input& in = inputs[s.input];
    if (!in.map) {
      if (e.ts > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        err = text_error{errc::out_of_range, 0, in.file->path() + ": raw timestamp " + std::to_string(e.ts) + " above INT64_MAX"};
        return false;
      }
      s.at = host_placement{static_cast<std::int64_t>(e.ts), false, 0, 0};
      return true;
    }
    auto r = in.map(e.cpu, e.ts);
    if (!r) {
      err = text_error{r.error(), 0, in.file->path() + ": vCPU " + std::to_string(e.cpu) + ", raw timestamp " + std::to_string(e.ts) +
                            ": cannot map to host time: " + to_string(r.error())};
      return false;
    }
    s.at = *r;
    return true;
  };

  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].file == nullptr)
      return unexpected(text_error{errc::invalid_argument, 0, "merge input " + std::to_string(i) + " has no file"});
    tracecmd_file& f = *inputs[i].file;
    for (std::size_t b = 0; b < f.buffer_count(); ++b) {
      tracecmd_buffer& buf = f.buffer(b);
      for (std::uint32_t c = 0; c < buf.cpu_count(); ++c) {
        const tracecmd_event* e = buf.peek(c);
        if (e == nullptr) continue;
        stream s{static_cast<std::uint32_t>(i), &buf, c, {}};
        if (!place(s, *e)) return unexpected(std::move(err));
        streams.push_back(s);
        heap.push({s.at.host_ns, static_cast<std::uint32_t>(streams.size() - 1)});
      }
    }
  }
  if (!writer.begin(inputs)) return unexpected(writer.error());

  std::int64_t last = std::numeric_limits<std::int64_t>::min();
  while (!heap.empty()) {
    const std::uint32_t si = heap.top().stream;
    stream& s = streams[si];
    const tracecmd_event* e = s.buffer->peek(s.cpu);
    merged_event m{s.input, e, s.buffer, s.at};
    if (s.at.host_ns < last) ++st.out_of_order;
    last = s.at.host_ns;
    if (!writer.write(m)) return unexpected(writer.error());
    ++st.events;
    ++st.per_input[s.input];
    if (s.at.has_hard) ++st.with_hard;
    s.buffer->pop(s.cpu);
    const tracecmd_event* nx = s.buffer->peek(s.cpu);
    if (nx == nullptr) {
      heap.pop();
      continue;
    }
    if (!place(s, *nx)) return unexpected(std::move(err));
    heap.replace_top({s.at.host_ns, si});
  }
  if (!writer.end()) return unexpected(writer.error());
  return st;
}

}  // namespace tsync::io
