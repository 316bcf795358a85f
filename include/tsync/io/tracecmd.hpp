#pragma once
/// \file
/// A strict codec for trace-cmd's time-synchronisation options, the options
/// framing around them, and a reader that finds them in a trace.dat file
/// (format versions 6 and 7). Layouts follow trace-cmd's format documentation
/// (trace-cmd.dat.v6(5), trace-cmd.dat.v7(5)) and the TIME_SHIFT comment in
/// trace-cmd's trace-input.c; see docs/interop.md.
///
/// **TIME_SHIFT** (option id 12), all integers in the file's byte order:
///
///     <8> peer trace id   <4> flags (bit 0: interpolate)   <4> CPU count n
///     n times: <4> count c, c x <8> times, c x <8> offsets, c x <8> scaling ratios
///     then, optionally (absent in files written before fraction bits existed):
///     n times: c x <8> fraction bits
///
/// **TSC2NSEC** (option id 14), exactly 16 bytes: `<4> mult, <4> shift, <8> offset`.
///
/// **Options framing**: `<2> id, <4> size, size bytes`; in a v6 file the list
/// ends with a bare id 0; in v7 the id-0 option (DONE) has an 8-byte payload,
/// the file offset of the next options section (0: none).
///
/// Every decoder checks each length and count against the bytes that remain
/// before it allocates or reads, and reports a `byte_error`: a `tsync::errc`,
/// the byte offset and a message that starts with the finer kind ("no CPUs
/// (trace-cmd bug B16): ..."); no input is undefined behaviour.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/kvm/clock_ns.hpp"
#include "tsync/core/config.hpp"
#include "tsync/io/file.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// Byte order of the numbers in a trace.dat file (declared in its header).
enum class byte_order : std::uint8_t { little, big };

inline constexpr std::uint16_t option_done = 0;         ///< ends an options list (v7: DONE, 8-byte payload)
inline constexpr std::uint16_t option_time_shift = 12;  ///< TIME_SHIFT
inline constexpr std::uint16_t option_tsc2nsec = 14;    ///< TSC2NSEC
inline constexpr std::uint32_t time_shift_flag_interpolate = 1;  ///< TIME_SHIFT flags bit 0 (PTP-like protocols)
inline constexpr std::size_t tsc2nsec_size = 16;        ///< the TSC2NSEC payload size

namespace detail {
/// The trace-cmd codec's finer kinds of error. Not public: errors are
/// `byte_error`s whose `code` is `to_errc(kind)` and whose message carries
/// `to_string(kind)` (e.g. "no CPUs (trace-cmd bug B16)").
enum class tc_kind : std::uint8_t {
  truncated = 1,              ///< the input ends inside a field or an array
  count_exceeds_payload = 2,  ///< a CPU or sample count whose arrays cannot fit in the bytes that remain
  trailing_bytes = 3,         ///< bytes after the last field
  no_cpus = 4,                ///< a TIME_SHIFT with 0 CPUs (trace-cmd bug B16: nothing is corrected)
  zero_samples = 5,           ///< a CPU with 0 samples (trace-cmd bug B18: its reader reads out of bounds)
  inconsistent_counts = 6,    ///< the layout of trace-cmd bug B7 (every CPU written with the last CPU's count)
  unsorted_times = 7,         ///< a CPU's sample times decrease
  bad_size = 8,               ///< a fixed-size payload of the wrong size
  missing_cpu = 9,            ///< a CPU the option has no entry for (trace-cmd bug B5)
  time_out_of_range = 10,     ///< a sample time >= 2^63 (cannot be a signed guest time)
  bad_fraction = 11,          ///< fraction bits above 63
  zero_scaling = 12,          ///< a scaling ratio of 0
  scaled_interpolation = 13,  ///< a scaled sample with the interpolate flag (tsync interpolates unscaled offsets only)
  zero_mult = 14,             ///< a TSC2NSEC multiplier of 0
  bad_shift = 15,             ///< a TSC2NSEC shift above 63
  bad_magic = 16,             ///< not a trace.dat file (magic, endianness or long-size byte)
  unsupported_version = 17,   ///< a trace.dat version other than 6 or 7
  compressed_section = 18,    ///< a compressed v7 options section (not supported)
  bad_offset = 19,            ///< a v7 section offset outside the file, not an options section, or a loop
  duplicate_option = 20,      ///< TIME_SHIFT or TSC2NSEC present twice
  missing_done = 21,          ///< an options list that ends without its end marker
  io_error = 22,              ///< the file could not be opened or read
};

/// A short, stable description of a kind (it starts the error message).
[[nodiscard]] constexpr const char* to_string(tc_kind e) noexcept {
  switch (e) {
    case tc_kind::truncated: return "truncated";
    case tc_kind::count_exceeds_payload: return "count exceeds the payload";
    case tc_kind::trailing_bytes: return "trailing bytes";
    case tc_kind::no_cpus: return "no CPUs (trace-cmd bug B16)";
    case tc_kind::zero_samples: return "a CPU with zero samples (trace-cmd bug B18)";
    case tc_kind::inconsistent_counts: return "inconsistent per-CPU counts (trace-cmd bug B7)";
    case tc_kind::unsorted_times: return "sample times are not sorted";
    case tc_kind::bad_size: return "wrong payload size";
    case tc_kind::missing_cpu: return "no entry for this CPU (trace-cmd bug B5)";
    case tc_kind::time_out_of_range: return "sample time above 2^63 - 1";
    case tc_kind::bad_fraction: return "fraction bits above 63";
    case tc_kind::zero_scaling: return "scaling ratio is zero";
    case tc_kind::scaled_interpolation: return "scaled sample with the interpolate flag";
    case tc_kind::zero_mult: return "TSC2NSEC multiplier is zero";
    case tc_kind::bad_shift: return "TSC2NSEC shift above 63";
    case tc_kind::bad_magic: return "not a trace.dat file";
    case tc_kind::unsupported_version: return "unsupported trace.dat version";
    case tc_kind::compressed_section: return "compressed options section";
    case tc_kind::bad_offset: return "bad section offset";
    case tc_kind::duplicate_option: return "option present twice";
    case tc_kind::missing_done: return "options list without its end marker";
    case tc_kind::io_error: return "I/O error";
  }
  return "unknown trace-cmd codec error";
}

/// The `tsync::errc` of a kind.
[[nodiscard]] constexpr errc to_errc(tc_kind e) noexcept {
  switch (e) {
    case tc_kind::truncated:
    case tc_kind::missing_done: return errc::truncated;
    case tc_kind::count_exceeds_payload: return errc::oversized;
    case tc_kind::no_cpus:
    case tc_kind::zero_samples: return errc::empty_input;
    case tc_kind::unsorted_times: return errc::unsorted_input;
    case tc_kind::missing_cpu: return errc::not_found;
    case tc_kind::time_out_of_range: return errc::out_of_range;
    case tc_kind::bad_fraction: return errc::bad_frac_bits;
    case tc_kind::zero_scaling: return errc::zero_ratio;
    case tc_kind::scaled_interpolation:
    case tc_kind::compressed_section: return errc::unsupported;
    case tc_kind::zero_mult:
    case tc_kind::bad_shift: return errc::invalid_argument;
    case tc_kind::unsupported_version: return errc::unsupported_version;
    case tc_kind::duplicate_option: return errc::duplicate_id;
    case tc_kind::io_error: return errc::io_error;
    case tc_kind::trailing_bytes:
    case tc_kind::inconsistent_counts:
    case tc_kind::bad_size:
    case tc_kind::bad_magic:
    case tc_kind::bad_offset: return errc::bad_format;
  }
  return errc::bad_format;
}

/// The error of a kind: code `to_errc(k)`, message "<kind>: <msg>".
inline byte_error tc_error(tc_kind k, std::size_t at, std::string msg) {
  return byte_error{to_errc(k), at, std::string(to_string(k)) + ": " + msg};
}
}  // namespace detail

/// Deprecated (one release): the codec's errors are `byte_error`s whose code
/// is a `tsync::errc`; the finer kind starts the message.
using tracecmd_errc [[deprecated("trace-cmd errors are byte_error with a tsync::errc code")]] = detail::tc_kind;
/// Deprecated (one release): use `tsync::byte_error` (code, offset, message).
using tracecmd_error [[deprecated("use tsync::byte_error")]] = byte_error;

/// One TIME_SHIFT sample as stored. `offset` is host − guest (trace-cmd adds
/// it to the guest time); `time` is the guest time the sample holds from.
/// Unscaled samples have `scaling == 1 << fraction` (trace-cmd writes 1 and 0).
struct time_shift_sample {
  std::uint64_t time = 0;      ///< guest time of the sample
  std::int64_t offset = 0;     ///< host − guest
  std::uint64_t scaling = 1;   ///< KVM TSC scaling ratio (fixed point)
  std::uint64_t fraction = 0;  ///< fraction bits of `scaling` (0 when the file has none)
  friend constexpr bool operator==(const time_shift_sample&, const time_shift_sample&) = default;
};

/// A decoded TIME_SHIFT option.
struct time_shift {
  std::uint64_t peer_trace_id = 0;                   ///< trace id of the peer (usually the host)
  std::uint32_t flags = 0;                           ///< protocol flags (bit 0: interpolate); other bits are kept as is
  bool has_fraction = true;                          ///< the optional fraction-bits arrays are present
  std::vector<std::vector<time_shift_sample>> cpus;  ///< samples per guest CPU, index = CPU
  /// What the decoder repaired (e.g. trace-cmd bug B7's count fields), one sentence each;
  /// empty for a well-formed payload. Never written by the encoder.
  std::vector<std::string> repairs{};
  /// True when flags bit 0 (interpolate) is set.
  [[nodiscard]] bool interpolate() const noexcept { return (flags & time_shift_flag_interpolate) != 0; }
  friend bool operator==(const time_shift&, const time_shift&) = default;
};

/// A decoded TSC2NSEC option: `ns = offset + floor(tsc * mult / 2^shift)`.
/// trace-cmd always writes `offset = 0` (it dropped perf's time_zero; bug B14).
/// `mult` stays unsigned: trace-cmd's reader stores it in an `int` and
/// sign-extends multipliers >= 2^31, which every TSC <= 1 GHz has (bug B13).
struct tsc2nsec {
  std::uint32_t mult = 0;    ///< multiplier (unsigned 32-bit)
  std::uint32_t shift = 0;   ///< shift (at most 63; the kernel's is at most 31)
  std::uint64_t offset = 0;  ///< added after scaling
  friend constexpr bool operator==(const tsc2nsec&, const tsc2nsec&) = default;
  /// The same conversion as `kvm::perf_time_params` (time_zero = offset).
  [[nodiscard]] kvm::perf_time_params to_perf_params() const noexcept {
    kvm::perf_time_params p;
    p.time_zero = offset;
    p.time_mult = mult;
    p.time_shift = static_cast<std::uint16_t>(shift & 0xFFFFu);
    return p;
  }
  /// TSC → ns, exact with a 128-bit product: `offset + floor(tsc * mult / 2^shift)`
  /// modulo 2^64 (what `kvm::tsc_to_ns` computes). Precondition: the option decoded.
  [[nodiscard]] std::uint64_t to_ns(std::uint64_t tsc) const noexcept { return kvm::tsc_to_ns(tsc, to_perf_params()); }
};

namespace detail {

inline std::uint64_t tc_get(const std::byte* p, std::size_t n, byte_order o) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = o == byte_order::little ? n - 1 - i : i;
    v = (v << 8) | std::to_integer<std::uint64_t>(p[k]);
  }
  return v;
}
inline void tc_put(std::vector<std::byte>& out, std::uint64_t v, std::size_t n, byte_order o) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t shift = 8 * (o == byte_order::little ? i : n - 1 - i);
    out.push_back(static_cast<std::byte>((v >> shift) & 0xFFu));
  }
}

inline unexpected<byte_error> tc_fail(tc_kind c, std::size_t at, std::string msg) {
  return unexpected(tc_error(c, at, std::move(msg)));
}

/// Bounds-checked reads from a byte span.
class tc_reader {
 public:
  tc_reader(std::span<const std::byte> in, byte_order o) noexcept : in_(in), o_(o) {}
  [[nodiscard]] std::size_t pos() const noexcept { return pos_; }
  [[nodiscard]] std::size_t left() const noexcept { return in_.size() - pos_; }
  [[nodiscard]] bool has(std::size_t n) const noexcept { return n <= left(); }
  /// Precondition: has(n).
  std::uint64_t get(std::size_t n) noexcept {
    const std::uint64_t v = tc_get(in_.data() + pos_, n, o_);
    pos_ += n;
    return v;
  }

 private:
  std::span<const std::byte> in_;
  byte_order o_;
  std::size_t pos_ = 0;
};

// The signature of trace-cmd bug B7: the writer points every CPU's count
// field at one variable, so each holds the LAST CPU's count K, while the
// time/offset/scaling arrays keep their true lengths and every fraction array
// is written with K entries. Then (with S the true total of samples)
//   size = 16 + 4n + 24 S + 8 n K,  S != n K,
// and the last CPU's count field, right before its 24 K bytes of arrays and
// the 8 n K bytes of fractions, reads K.
//
// Recovery: the true counts c_0..c_{n-1} (c_{n-1} = K, sum S) are the splits
// of the arrays for which every CPU's block starts with a count field reading
// K, every CPU's times are non-decreasing, and no scaling is zero. They are
// enumerated depth first (the time order cuts most branches at once); more
// than one consistent split is ambiguous and refused, and the search is
// bounded so that a hostile payload cannot make it slow.
struct b7_layout {
  std::uint64_t n = 0, k = 0, total = 0;
};

inline std::optional<b7_layout> tc_b7_layout(std::span<const std::byte> in, byte_order o, std::uint64_t n) {
  if (n < 2 || in.size() < 20) return std::nullopt;
  const std::uint64_t k = tc_get(in.data() + 16, 4, o);
  if (k == 0) return std::nullopt;
  const u128 fixed = static_cast<u128>(16) + 4 * static_cast<u128>(n) + 8 * static_cast<u128>(n) * k;
  const u128 size = in.size();
  if (size < fixed + 24 * static_cast<u128>(k) + 4) return std::nullopt;
  const u128 rest = size - fixed;
  if (rest % 24 != 0) return std::nullopt;
  const u128 total = rest / 24;
  if (total == static_cast<u128>(n) * k || total < k + (n - 1)) return std::nullopt;
  const u128 last_count_at = size - 8 * static_cast<u128>(n) * k - 24 * static_cast<u128>(k) - 4;
  if (last_count_at < 16 + 4 * static_cast<u128>(n - 1)) return std::nullopt;
  if (tc_get(in.data() + static_cast<std::size_t>(last_count_at), 4, o) != k) return std::nullopt;
  return b7_layout{n, k, static_cast<std::uint64_t>(total)};
}

class b7_splitter {
 public:
  static constexpr std::uint64_t max_steps = 1'000'000;
  b7_splitter(std::span<const std::byte> in, byte_order o, const b7_layout& l) : in_(in), o_(o), l_(l) {}

  /// Every consistent split (at most 2 are collected); `exhausted` when the search was cut short.
  void run() { descend(0, 16, l_.total); }
  [[nodiscard]] const std::vector<std::vector<std::uint64_t>>& found() const noexcept { return found_; }
  [[nodiscard]] bool exhausted() const noexcept { return steps_ >= max_steps; }

 private:
  [[nodiscard]] std::uint64_t word(std::uint64_t at) const noexcept { return tc_get(in_.data() + at, 8, o_); }
  // Block of CPU `cpu` at `pos` with `c` samples: times sorted and scalings non-zero.
  [[nodiscard]] bool block_ok(std::uint64_t pos, std::uint64_t c) const noexcept {
    for (std::uint64_t j = 0; j < c; ++j)
      if (word(pos + 4 + 16 * c + 8 * j) == 0) return false;
    return true;
  }
  void descend(std::uint64_t cpu, std::uint64_t pos, std::uint64_t left) {
    if (found_.size() >= 2 || ++steps_ >= max_steps) return;
    if (pos + 4 > in_.size() || tc_get(in_.data() + pos, 4, o_) != l_.k) return;
    const std::uint64_t cpus_after = l_.n - 1 - cpu;
    if (cpus_after == 0) {
      if (left != l_.k || pos + 4 + 24 * left + 8 * l_.n * l_.k != in_.size()) return;
      for (std::uint64_t j = 1; j < left; ++j)
        if (word(pos + 4 + 8 * j) < word(pos + 4 + 8 * (j - 1))) return;
      if (!block_ok(pos, left)) return;
      cur_.push_back(left);
      found_.push_back(cur_);
      cur_.pop_back();
      return;
    }
    // This CPU takes c samples; every later CPU needs at least one, the last K.
    const std::uint64_t most = left - l_.k - (cpus_after - 1);
    for (std::uint64_t c = 1; c <= most && found_.size() < 2 && steps_ < max_steps; ++c) {
      ++steps_;
      if (c > 1 && word(pos + 4 + 8 * (c - 1)) < word(pos + 4 + 8 * (c - 2))) break;  // times stop being sorted
      if (!block_ok(pos, c)) continue;
      cur_.push_back(c);
      descend(cpu + 1, pos + 4 + 24 * c, left - c);
      cur_.pop_back();
    }
  }

  std::span<const std::byte> in_;
  byte_order o_;
  b7_layout l_;
  std::uint64_t steps_ = 0;
  std::vector<std::uint64_t> cur_;
  std::vector<std::vector<std::uint64_t>> found_;
};

inline std::string tc_join_counts(const std::vector<std::uint64_t>& c) {
  std::string s;
  for (std::size_t i = 0; i < c.size(); ++i) s += (i ? ", " : "") + std::to_string(c[i]);
  return s;
}

// Build the time_shift of a recovered split; fractions are trusted only where
// the writer read inside the CPU's array (index < min(K, c_i)).
inline expected<time_shift, byte_error> tc_b7_build(std::span<const std::byte> in, byte_order o, const b7_layout& l,
                                                         const std::vector<std::uint64_t>& counts) {
  time_shift ts;
  ts.peer_trace_id = tc_get(in.data(), 8, o);
  ts.flags = static_cast<std::uint32_t>(tc_get(in.data() + 8, 4, o));
  ts.cpus.resize(static_cast<std::size_t>(l.n));
  std::uint64_t pos = 16;
  for (std::size_t cpu = 0; cpu < ts.cpus.size(); ++cpu) {
    const std::uint64_t c = counts[cpu];
    auto& v = ts.cpus[cpu];
    v.resize(static_cast<std::size_t>(c));
    for (std::uint64_t j = 0; j < c; ++j) {
      v[j].time = tc_get(in.data() + pos + 4 + 8 * j, 8, o);
      v[j].offset = static_cast<std::int64_t>(tc_get(in.data() + pos + 4 + 8 * c + 8 * j, 8, o));
      v[j].scaling = tc_get(in.data() + pos + 4 + 16 * c + 8 * j, 8, o);
    }
    pos += 4 + 24 * c;
  }
  for (std::size_t cpu = 0; cpu < ts.cpus.size(); ++cpu) {
    auto& v = ts.cpus[cpu];
    for (std::uint64_t j = 0; j < v.size(); ++j) {
      if (j < l.k) {
        v[j].fraction = tc_get(in.data() + pos + 8 * (cpu * l.k + j), 8, o);
      } else if (v[j].scaling != 1) {
        return tc_fail(detail::tc_kind::inconsistent_counts, 16,
                       "trace-cmd bug B7: CPU " + std::to_string(cpu) + " has " + std::to_string(v.size()) +
                           " scaled samples but the writer stored only " + std::to_string(l.k) +
                           " fraction-bit entries for it; the scaling of the others is lost");
      }
      if (v[j].scaling == 1) v[j].fraction = 0;  // unscaled: trace-cmd writes (1, 0); the entry may be garbage
    }
  }
  ts.repairs.push_back("trace-cmd bug B7: every per-CPU count field holds the last CPU's count " + std::to_string(l.k) +
                       "; the per-CPU counts were recovered from the payload size and each CPU's time order: " +
                       tc_join_counts(counts));
  return ts;
}

// Recover a B7 payload, or explain why not (nullopt: not the B7 layout).
inline std::optional<expected<time_shift, byte_error>> tc_recover_b7(std::span<const std::byte> in, byte_order o,
                                                                         std::uint64_t n) {
  const auto l = tc_b7_layout(in, o, n);
  if (!l) return std::nullopt;
  b7_splitter sp(in, o, *l);
  sp.run();
  std::ostringstream m;
  m << "the sizes do not add up: " << n << " CPUs that each declare " << l->k << " samples need "
    << 16 + 4 * n + 24 * n * l->k + 8 * n * l->k << " bytes but the payload has " << in.size()
    << "; the size fits the layout trace-cmd's writer produces when vCPUs have different sample counts"
    << " (bug B7: every count field holds the last CPU's count " << l->k << ", the arrays hold " << l->total
    << " samples in all)";
  if (sp.found().size() == 1) return tc_b7_build(in, o, *l, sp.found()[0]);
  if (sp.found().size() > 1)
    m << "; the per-CPU counts are ambiguous: both " << tc_join_counts(sp.found()[0]) << " and "
      << tc_join_counts(sp.found()[1]) << " fit the time order";
  else if (sp.exhausted())
    m << "; the search for the per-CPU counts was stopped after " << b7_splitter::max_steps << " steps";
  else
    m << "; no split of the arrays has every CPU's times in order, so the per-CPU counts cannot be recovered";
  return expected<time_shift, byte_error>(unexpected(detail::tc_error(detail::tc_kind::inconsistent_counts, 16, m.str())));
}

inline expected<time_shift, byte_error> tc_decode_time_shift_raw(std::span<const std::byte> in, byte_order o) {
  tc_reader r(in, o);
  if (!r.has(16))
    return tc_fail(detail::tc_kind::truncated, 0,
                   "TIME_SHIFT needs at least 16 bytes (trace id, flags, CPU count), found " + std::to_string(in.size()));
  time_shift ts;
  ts.peer_trace_id = r.get(8);
  ts.flags = static_cast<std::uint32_t>(r.get(4));
  const std::uint64_t n = r.get(4);
  if (n == 0)
    return tc_fail(detail::tc_kind::no_cpus, 12,
                   "the CPU count is 0: no CPU would be corrected (trace-cmd attach writes this without -c, bug B16)");
  if (n > r.left() / 4)
    return tc_fail(detail::tc_kind::count_exceeds_payload, 12,
                   "CPU count " + std::to_string(n) + " needs at least " + std::to_string(4 * n) + " bytes, " +
                       std::to_string(r.left()) + " remain");
  ts.cpus.resize(static_cast<std::size_t>(n));
  std::uint64_t total = 0;
  for (std::size_t cpu = 0; cpu < ts.cpus.size(); ++cpu) {
    const std::size_t at = r.pos();
    if (!r.has(4))
      return tc_fail(detail::tc_kind::truncated, at, "the payload ends before the sample count of CPU " + std::to_string(cpu));
    const std::uint64_t c = r.get(4);
    if (c == 0)
      return tc_fail(detail::tc_kind::zero_samples, at,
                     "CPU " + std::to_string(cpu) + " has 0 samples (trace-cmd's reader accepts this and reads out of bounds, bug B18)");
    if (c > r.left() / 24)
      return tc_fail(detail::tc_kind::count_exceeds_payload, at,
                     "CPU " + std::to_string(cpu) + " declares " + std::to_string(c) + " samples (" + std::to_string(24 * c) +
                         " bytes), " + std::to_string(r.left()) + " remain");
    auto& v = ts.cpus[cpu];
    v.resize(static_cast<std::size_t>(c));
    for (auto& s : v) s.time = r.get(8);
    for (auto& s : v) s.offset = static_cast<std::int64_t>(r.get(8));
    for (auto& s : v) s.scaling = r.get(8);
    total += c;
  }
  if (r.left() == 0) {
    ts.has_fraction = false;
  } else {
    const std::size_t at = r.pos();
    if (total > r.left() / 8)
      return tc_fail(detail::tc_kind::truncated, at,
                     "the fraction-bits arrays need " + std::to_string(8 * total) + " bytes, " + std::to_string(r.left()) +
                         " remain");
    for (auto& v : ts.cpus)
      for (auto& s : v) s.fraction = r.get(8);
    if (r.left() != 0)
      return tc_fail(detail::tc_kind::trailing_bytes, r.pos(),
                     std::to_string(r.left()) + " bytes after the fraction-bits arrays");
  }
  return ts;
}

}  // namespace detail

/// Decode a TIME_SHIFT payload (exactly the option's bytes).
///
/// Errors: `truncated` (the payload ends inside a field, or inside the
/// fraction arrays), `count_exceeds_payload` (a CPU count or a sample count
/// whose arrays cannot fit in the remaining bytes; checked before any
/// allocation), `trailing_bytes`, `no_cpus` (B16), `zero_samples` (B18),
/// `inconsistent_counts` (B7, trace-cmd's writer storing the last CPU's count
/// in every count field, when the true counts cannot be recovered: the split
/// is ambiguous or no split keeps every CPU's times in order; the message says
/// which), `unsorted_times`
/// (a CPU's times decrease; equal times are allowed).
/// A B7 payload whose counts ARE recoverable (one split of the arrays keeps
/// every CPU's times in order and every count field reading the last count)
/// decodes, with a sentence in `repairs` naming the bug and the recovered counts.
/// The fraction arrays are optional: when nothing follows the scaling arrays
/// `has_fraction` is false and every `fraction` is 0.
[[nodiscard]] inline expected<time_shift, byte_error> decode_time_shift(std::span<const std::byte> in, byte_order o) {
  auto ts = detail::tc_decode_time_shift_raw(in, o);
  if (!ts) {
    const auto c = ts.error().code;
    // truncated, count exceeds payload, trailing bytes, or a CPU with zero
    // samples (empty_input past the CPU count; no CPUs is at byte 12)
    const bool structural = c == errc::truncated || c == errc::oversized || c == errc::bad_format ||
                            (c == errc::empty_input && ts.error().offset > 16);
    if (structural && in.size() >= 16) {
      if (auto b7 = detail::tc_recover_b7(in, o, detail::tc_get(in.data() + 12, 4, o))) {
        if (!*b7) return unexpected(b7->error());
        ts = std::move(*b7);
      }
    }
    if (!ts) return ts;
  }
  for (std::size_t cpu = 0; cpu < ts->cpus.size(); ++cpu) {
    const auto& v = ts->cpus[cpu];
    for (std::size_t i = 1; i < v.size(); ++i)
      if (v[i].time < v[i - 1].time)
        return detail::tc_fail(detail::tc_kind::unsorted_times, byte_error::no_offset,
                               "CPU " + std::to_string(cpu) + ": sample " + std::to_string(i) + " time " +
                                   std::to_string(v[i].time) + " is below the previous " + std::to_string(v[i - 1].time));
  }
  return ts;
}

/// The encoded size of a TIME_SHIFT (without validation).
[[nodiscard]] inline std::uint64_t encoded_size(const time_shift& ts) noexcept {
  std::uint64_t n = 16;
  for (const auto& v : ts.cpus) n += 4 + (ts.has_fraction ? 32 : 24) * static_cast<std::uint64_t>(v.size());
  return n;
}

/// Encode a TIME_SHIFT payload. It must decode again: at least one CPU, at
/// least one sample per CPU, times sorted per CPU, and the whole payload at
/// most 2^32 − 1 bytes (the option size field); with `has_fraction == false`
/// every `fraction` must be 0. Errors use the decoder's names
/// (`no_cpus`, `zero_samples`, `unsorted_times`, `count_exceeds_payload`, `bad_fraction`).
[[nodiscard]] inline expected<std::vector<std::byte>, byte_error> encode_time_shift(const time_shift& ts,
                                                                                       byte_order o) {
  using detail::tc_fail;
  if (ts.cpus.empty()) return tc_fail(detail::tc_kind::no_cpus, byte_error::no_offset, "a TIME_SHIFT needs at least one CPU");
  if (encoded_size(ts) > std::numeric_limits<std::uint32_t>::max())
    return tc_fail(detail::tc_kind::count_exceeds_payload, byte_error::no_offset, "the payload would exceed the 32-bit option size");
  for (std::size_t cpu = 0; cpu < ts.cpus.size(); ++cpu) {
    const auto& v = ts.cpus[cpu];
    if (v.empty()) return tc_fail(detail::tc_kind::zero_samples, byte_error::no_offset, "CPU " + std::to_string(cpu) + " has no samples");
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0 && v[i].time < v[i - 1].time)
        return tc_fail(detail::tc_kind::unsorted_times, byte_error::no_offset,
                       "CPU " + std::to_string(cpu) + ": sample " + std::to_string(i) + " time is below the previous");
      if (!ts.has_fraction && v[i].fraction != 0)
        return tc_fail(detail::tc_kind::bad_fraction, byte_error::no_offset,
                       "CPU " + std::to_string(cpu) + ": fraction bits set but has_fraction is false");
    }
  }
  std::vector<std::byte> out;
  out.reserve(static_cast<std::size_t>(encoded_size(ts)));
  detail::tc_put(out, ts.peer_trace_id, 8, o);
  detail::tc_put(out, ts.flags, 4, o);
  detail::tc_put(out, ts.cpus.size(), 4, o);
  for (const auto& v : ts.cpus) {
    detail::tc_put(out, v.size(), 4, o);
    for (const auto& s : v) detail::tc_put(out, s.time, 8, o);
    for (const auto& s : v) detail::tc_put(out, static_cast<std::uint64_t>(s.offset), 8, o);
    for (const auto& s : v) detail::tc_put(out, s.scaling, 8, o);
  }
  if (ts.has_fraction)
    for (const auto& v : ts.cpus)
      for (const auto& s : v) detail::tc_put(out, s.fraction, 8, o);
  return out;
}

/// Decode a TSC2NSEC payload. Errors: `bad_size` (not exactly 16 bytes),
/// `zero_mult`, `bad_shift` (above 63).
[[nodiscard]] inline expected<tsc2nsec, byte_error> decode_tsc2nsec(std::span<const std::byte> in, byte_order o) {
  using detail::tc_fail;
  if (in.size() != tsc2nsec_size)
    return tc_fail(in.size() < tsc2nsec_size ? detail::tc_kind::truncated : detail::tc_kind::bad_size, 0,
                   "TSC2NSEC is 16 bytes (mult, shift, offset), found " + std::to_string(in.size()));
  tsc2nsec t;
  t.mult = static_cast<std::uint32_t>(detail::tc_get(in.data(), 4, o));
  t.shift = static_cast<std::uint32_t>(detail::tc_get(in.data() + 4, 4, o));
  t.offset = detail::tc_get(in.data() + 8, 8, o);
  if (t.mult == 0) return tc_fail(detail::tc_kind::zero_mult, 0, "the multiplier is 0: no conversion is possible");
  if (t.shift > 63) return tc_fail(detail::tc_kind::bad_shift, 4, "shift " + std::to_string(t.shift) + " is above 63");
  return t;
}

/// Encode a TSC2NSEC payload (16 bytes). Errors: `zero_mult`, `bad_shift`.
[[nodiscard]] inline expected<std::vector<std::byte>, byte_error> encode_tsc2nsec(const tsc2nsec& t, byte_order o) {
  if (t.mult == 0) return detail::tc_fail(detail::tc_kind::zero_mult, byte_error::no_offset, "the multiplier is 0");
  if (t.shift > 63) return detail::tc_fail(detail::tc_kind::bad_shift, 4, "shift above 63");
  std::vector<std::byte> out;
  out.reserve(tsc2nsec_size);
  detail::tc_put(out, t.mult, 4, o);
  detail::tc_put(out, t.shift, 4, o);
  detail::tc_put(out, t.offset, 8, o);
  return out;
}

// ---------------------------------------------------------------------------
// Conversion to sync tables
// ---------------------------------------------------------------------------

/// The samples of one CPU as `sync_sample`s: `guest_time = time`,
/// `offset = offset`, `ratio = scaling`, `frac_bits = fraction`.
///
/// Scaling is applied whatever the sample count. trace-cmd ignores scaling
/// and fraction when a CPU has exactly one sample (bug B3; `trace-cmd attach`
/// always writes one), so for a scaled single-sample file tsync's host times
/// differ from trace-cmd's — tsync's are the exact KVM inverse.
///
/// Errors: `missing_cpu` (B5: `cpu` has no entry; trace-cmd silently returns
/// the raw guest time), `time_out_of_range` (time >= 2^63), `bad_fraction`,
/// `zero_scaling`.
[[nodiscard]] inline expected<std::vector<sync_sample>, byte_error> to_sync_samples(const time_shift& ts,
                                                                                       std::size_t cpu) {
  using detail::tc_fail;
  if (cpu >= ts.cpus.size())
    return tc_fail(detail::tc_kind::missing_cpu, byte_error::no_offset,
                   "CPU " + std::to_string(cpu) + " has no TIME_SHIFT entry (the option has " + std::to_string(ts.cpus.size()) +
                       " CPUs); its events cannot be corrected");
  std::vector<sync_sample> out;
  out.reserve(ts.cpus[cpu].size());
  std::size_t i = 0;
  for (const auto& s : ts.cpus[cpu]) {
    const std::string where = "CPU " + std::to_string(cpu) + " sample " + std::to_string(i);
    if (s.time > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return tc_fail(detail::tc_kind::time_out_of_range, byte_error::no_offset, where + ": time " + std::to_string(s.time) + " is above 2^63 - 1");
    if (s.fraction > 63)
      return tc_fail(detail::tc_kind::bad_fraction, byte_error::no_offset, where + ": fraction bits " + std::to_string(s.fraction) + " above 63");
    if (s.scaling == 0) return tc_fail(detail::tc_kind::zero_scaling, byte_error::no_offset, where + ": scaling ratio is 0");
    sync_sample x;
    x.guest_time = at_ns<guest>(static_cast<std::int64_t>(s.time));
    x.offset = guest_to_host(s.offset);
    x.ratio = s.scaling;
    x.frac_bits = static_cast<std::uint8_t>(s.fraction);
    out.push_back(x);
    ++i;
  }
  return out;
}

/// The correction mode a TIME_SHIFT asks for: interpolate when flags bit 0 is
/// set (PTP-like protocols), step otherwise (KVM).
[[nodiscard]] inline correct::correction_mode mode_of(const time_shift& ts) noexcept {
  return ts.interpolate() ? correct::correction_mode::interpolate : correct::correction_mode::step;
}

/// The sync table of one CPU (`sync_table::make` on `to_sync_samples`, in
/// `mode_of(ts)`, with `outside`). Errors: those of `to_sync_samples`, and
/// `scaled_interpolation` when the interpolate flag meets a scaled sample
/// (tsync interpolates unscaled offsets only).
[[nodiscard]] inline expected<correct::sync_table, byte_error> to_sync_table(
    const time_shift& ts, std::size_t cpu, correct::outside_policy outside = correct::outside_policy::extrapolate) {
  auto samples = to_sync_samples(ts, cpu);
  if (!samples) return unexpected(samples.error());
  const auto mode = mode_of(ts);
  if (auto v = correct::validate(*samples, mode); !v) {
    const index_error* bad = &v.error();
    const std::string where = "CPU " + std::to_string(cpu) + " sample " + std::to_string(bad->index);
    if (bad->code == errc::unsupported)
      return detail::tc_fail(detail::tc_kind::scaled_interpolation, byte_error::no_offset,
                             where + ": scaled (ratio != 2^frac_bits) but the interpolate flag is set");
    if (bad->code == errc::unsorted_input)
      return detail::tc_fail(detail::tc_kind::unsorted_times, byte_error::no_offset, where + ": time below the previous sample's");
    if (bad->code == errc::empty_input) return detail::tc_fail(detail::tc_kind::zero_samples, byte_error::no_offset, where + ": no samples");
    return detail::tc_fail(detail::tc_kind::bad_fraction, byte_error::no_offset, where + ": " + to_string(bad->code));
  }
  auto t = correct::sync_table::make(std::move(*samples), mode, outside);
  if (!t) return unexpected(byte_error{t.error(), byte_error::no_offset, std::string("sync table: ") + to_string(t.error())});
  return std::move(*t);
}

/// One table per CPU, index = CPU (the first error stops).
[[nodiscard]] inline expected<std::vector<correct::sync_table>, byte_error> to_sync_tables(
    const time_shift& ts, correct::outside_policy outside = correct::outside_policy::extrapolate) {
  std::vector<correct::sync_table> out;
  out.reserve(ts.cpus.size());
  for (std::size_t cpu = 0; cpu < ts.cpus.size(); ++cpu) {
    auto t = to_sync_table(ts, cpu, outside);
    if (!t) return unexpected(t.error());
    out.push_back(std::move(*t));
  }
  return out;
}

/// The samples as the text `tsync correct --table` reads: a `#` comment with
/// the mode, a header line, then `time,offset,ratio,frac_bits` per sample.
[[nodiscard]] inline std::string to_table_csv(std::span<const sync_sample> samples, correct::correction_mode mode) {
  std::ostringstream s;
  io::write_table_csv(s, samples,
                           std::string("trace-cmd TIME_SHIFT; use: tsync correct --mode ") +
                               (mode == correct::correction_mode::step ? "step" : "interpolate"));
  return s.str();
}

/// A readable dump of a TIME_SHIFT (one line per sample).
[[nodiscard]] inline std::string to_text(const time_shift& ts) {
  std::ostringstream o;
  o << "TIME_SHIFT peer_trace_id=0x" << std::hex << ts.peer_trace_id << std::dec << " flags=0x" << std::hex << ts.flags
    << std::dec << " (" << (ts.interpolate() ? "interpolate" : "step") << ") cpus=" << ts.cpus.size()
    << " fraction_bits=" << (ts.has_fraction ? "present" : "absent") << "\n";
  for (std::size_t cpu = 0; cpu < ts.cpus.size(); ++cpu) {
    o << "  cpu " << cpu << ": " << ts.cpus[cpu].size() << " sample(s)\n";
    for (const auto& s : ts.cpus[cpu])
      o << "    time=" << s.time << " offset=" << s.offset << " scaling=" << s.scaling << " fraction=" << s.fraction
        << "\n";
  }
  return o.str();
}

/// A readable dump of a TSC2NSEC.
[[nodiscard]] inline std::string to_text(const tsc2nsec& t) {
  return "TSC2NSEC mult=" + std::to_string(t.mult) + " shift=" + std::to_string(t.shift) +
         " offset=" + std::to_string(t.offset) + "\n";
}

// ---------------------------------------------------------------------------
// Options framing
// ---------------------------------------------------------------------------

/// How an options list ends: v6 with a bare id 0; v7 with a DONE option
/// (id 0, 8-byte payload: the offset of the next options section).
enum class option_framing : std::uint8_t { v6, v7 };

/// One option: its id, where its header starts and its payload.
struct option_view {
  std::uint16_t id = 0;
  std::size_t offset = 0;                 ///< offset of the option's id field in the input
  std::span<const std::byte> payload{};   ///< the option's data
};

/// Iterates over an options list held in memory (bounds-checked).
class option_cursor {
 public:
  option_cursor(std::span<const std::byte> in, byte_order o, option_framing f) noexcept : in_(in), o_(o), f_(f) {}

  /// The next option, or an empty optional at the end marker. Errors:
  /// `missing_done` (the input ends where an option id is expected),
  /// `truncated` (an option header or payload cut short), `bad_size` (a v7
  /// DONE whose payload is not 8 bytes). After an error or the end, stays there.
  [[nodiscard]] expected<std::optional<option_view>, byte_error> next() {
    using detail::tc_fail;
    if (done_) return std::optional<option_view>{};
    if (failed_) return unexpected(*failed_);
    const std::size_t at = pos_;
    const std::size_t left = in_.size() - pos_;
    if (left < 2) return fail(detail::tc_kind::missing_done, at, "the options list ends without its end marker (id 0)");
    const auto id = static_cast<std::uint16_t>(detail::tc_get(in_.data() + pos_, 2, o_));
    if (id == option_done && f_ == option_framing::v6) {
      pos_ += 2;
      done_ = true;
      return std::optional<option_view>{};
    }
    if (left < 6) return fail(detail::tc_kind::truncated, at, "option " + std::to_string(id) + ": the size field is cut short");
    const std::uint64_t size = detail::tc_get(in_.data() + pos_ + 2, 4, o_);
    if (size > left - 6)
      return fail(detail::tc_kind::truncated, at,
                  "option " + std::to_string(id) + " declares " + std::to_string(size) + " bytes, " +
                      std::to_string(left - 6) + " remain");
    option_view v{id, at, in_.subspan(pos_ + 6, static_cast<std::size_t>(size))};
    pos_ += 6 + static_cast<std::size_t>(size);
    if (id == option_done) {
      if (size != 8) return fail(detail::tc_kind::bad_size, at, "the DONE option has " + std::to_string(size) + " bytes, not 8");
      next_section_ = detail::tc_get(v.payload.data(), 8, o_);
      done_ = true;
      return std::optional<option_view>{};
    }
    return std::optional<option_view>{v};
  }
  /// Offset just after the last option read (after the end marker at the end).
  [[nodiscard]] std::size_t position() const noexcept { return pos_; }
  /// True after the end marker.
  [[nodiscard]] bool done() const noexcept { return done_; }
  /// v7: the next options section's file offset from DONE (0: none).
  [[nodiscard]] std::uint64_t next_section() const noexcept { return next_section_; }

 private:
  unexpected<byte_error> fail(detail::tc_kind c, std::size_t at, std::string msg) {
    failed_ = detail::tc_error(c, at, std::move(msg));
    return unexpected(*failed_);
  }
  std::span<const std::byte> in_;
  byte_order o_;
  option_framing f_;
  std::size_t pos_ = 0;
  bool done_ = false;
  std::uint64_t next_section_ = 0;
  std::optional<byte_error> failed_{};
};

/// Append one option (`<2> id, <4> size, payload`). Precondition: payload
/// shorter than 2^32 bytes.
inline void append_option(std::vector<std::byte>& out, std::uint16_t id, std::span<const std::byte> payload,
                          byte_order o) {
  detail::tc_put(out, id, 2, o);
  detail::tc_put(out, payload.size(), 4, o);
  out.insert(out.end(), payload.begin(), payload.end());
}
/// Append the end marker: v6 a bare id 0, v7 DONE with the next section's offset.
inline void append_options_end(std::vector<std::byte>& out, byte_order o, option_framing f,
                               std::uint64_t next_section = 0) {
  detail::tc_put(out, option_done, 2, o);
  if (f == option_framing::v7) {
    detail::tc_put(out, 8, 4, o);
    detail::tc_put(out, next_section, 8, o);
  }
}

/// The sync options found in an options list or a file.
struct sync_options {
  std::optional<time_shift> time_shift_option{};  ///< TIME_SHIFT when present
  std::optional<tsc2nsec> tsc2nsec_option{};      ///< TSC2NSEC when present
  std::size_t option_count = 0;                   ///< options seen, of any id
  /// v7 only: a TIME_SHIFT found in an options section that the chain of
  /// options sections does not reach (trace-cmd sometimes writes the section
  /// but never links it). Filled only when the chain has no TIME_SHIFT; it is
  /// moved into `time_shift_option` only when the reader is asked to
  /// (`dat_read_options::use_unlinked_time_shift`).
  std::optional<time_shift> unlinked_time_shift{};
  std::uint64_t unlinked_time_shift_at = 0;  ///< file offset of that section's header
};

/// How the trace.dat reader treats what trace-cmd's writer left behind.
struct dat_read_options {
  /// Use a TIME_SHIFT section that the options chain does not link (see
  /// `sync_options::unlinked_time_shift`) as the file's TIME_SHIFT.
  bool use_unlinked_time_shift = false;
};

namespace detail {
inline std::optional<byte_error> tc_take(sync_options& out, std::uint16_t id, std::span<const std::byte> payload,
                                             byte_order o, std::size_t at) {
  ++out.option_count;
  if (id == option_time_shift) {
    if (out.time_shift_option)
      return detail::tc_error(detail::tc_kind::duplicate_option, at, "a second TIME_SHIFT option");
    auto ts = decode_time_shift(payload, o);
    if (!ts) {
      auto e = ts.error();
      e.message = "TIME_SHIFT (payload at byte " + std::to_string(at + 6) + "): " + e.message;
      if (e.offset != byte_error::no_offset) e.offset += at + 6;
      return e;
    }
    out.time_shift_option = std::move(*ts);
  } else if (id == option_tsc2nsec) {
    if (out.tsc2nsec_option) return detail::tc_error(detail::tc_kind::duplicate_option, at, "a second TSC2NSEC option");
    auto t = decode_tsc2nsec(payload, o);
    if (!t) {
      auto e = t.error();
      e.message = "TSC2NSEC (payload at byte " + std::to_string(at + 6) + "): " + e.message;
      if (e.offset != byte_error::no_offset) e.offset += at + 6;
      return e;
    }
    out.tsc2nsec_option = *t;
  }
  return std::nullopt;
}
}  // namespace detail

/// Decode TIME_SHIFT and TSC2NSEC from an options list in memory (other
/// options are skipped). Errors: the cursor's, the decoders' (offsets into
/// `in`), and `duplicate_option`.
[[nodiscard]] inline expected<sync_options, byte_error> read_sync_options(std::span<const std::byte> in, byte_order o,
                                                                              option_framing f) {
  option_cursor c(in, o, f);
  sync_options out;
  while (true) {
    auto v = c.next();
    if (!v) return unexpected(v.error());
    if (!*v) break;
    if (auto e = detail::tc_take(out, (*v)->id, (*v)->payload, o, (*v)->offset)) return unexpected(*e);
  }
  return out;
}

// ---------------------------------------------------------------------------
// trace.dat files
// ---------------------------------------------------------------------------

/// What the file reader returns.
struct trace_dat_info {
  unsigned version = 0;                     ///< 6 or 7
  byte_order order = byte_order::little;    ///< the file's byte order
  unsigned long_size = 8;                   ///< 4 or 8
  std::uint32_t page_size = 0;              ///< the traced machine's page size
  std::string compression{};                ///< v7: the compression algorithm name ("none" when uncompressed)
  sync_options options{};                   ///< TIME_SHIFT / TSC2NSEC when present
};

/// A random-access byte source for the file reader: a span in memory.
class span_source {
 public:
  explicit span_source(std::span<const std::byte> s) noexcept : s_(s) {}
  [[nodiscard]] std::uint64_t size() const noexcept { return s_.size(); }
  /// Fill `out` from `off`; false when the range is outside the data.
  [[nodiscard]] bool read(std::uint64_t off, std::span<std::byte> out) const noexcept {
    if (off > s_.size() || out.size() > s_.size() - off) return false;
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = s_[static_cast<std::size_t>(off) + i];
    return true;
  }

 private:
  std::span<const std::byte> s_;
};

/// A random-access byte source over an open file (reads only what it needs).
class file_source {
 public:
  explicit file_source(std::ifstream& f) : f_(f) {
    f_.seekg(0, std::ios::end);
    const auto end = f_.tellg();
    size_ = end < 0 ? 0 : static_cast<std::uint64_t>(end);
  }
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  [[nodiscard]] bool read(std::uint64_t off, std::span<std::byte> out) const {
    if (off > size_ || out.size() > size_ - off) return false;
    if (out.empty()) return true;
    f_.clear();
    f_.seekg(static_cast<std::streamoff>(off));
    f_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()));
    return static_cast<std::size_t>(f_.gcount()) == out.size();
  }

 private:
  std::ifstream& f_;
  std::uint64_t size_ = 0;
};

namespace detail {

template <class Source> class dat_parser {
 public:
  explicit dat_parser(const Source& s, dat_read_options ro = {}) : s_(s), ro_(ro) {}

  expected<trace_dat_info, byte_error> run() {
    trace_dat_info info;
    std::array<std::byte, 10> magic{};
    if (!s_.read(0, magic)) return tc_fail(detail::tc_kind::truncated, 0, "the file is shorter than the 10-byte magic");
    static constexpr unsigned char want[10] = {0x17, 0x08, 0x44, 't', 'r', 'a', 'c', 'i', 'n', 'g'};
    for (std::size_t i = 0; i < 10; ++i)
      if (std::to_integer<unsigned char>(magic[i]) != want[i])
        return tc_fail(detail::tc_kind::bad_magic, i, "magic 17 08 44 'tracing' expected");
    pos_ = 10;
    auto ver = cstr(16, "version string");
    if (!ver) return unexpected(ver.error());
    if (*ver == "6") info.version = 6;
    else if (*ver == "7") info.version = 7;
    else return tc_fail(detail::tc_kind::unsupported_version, 10, "version '" + quote_input(*ver, 16) + "' (6 and 7 are supported)");
    auto endian = bytes(1, "endianness flag");
    if (!endian) return unexpected(endian.error());
    const auto e = std::to_integer<unsigned>((*endian)[0]);
    if (e > 1) return tc_fail(detail::tc_kind::bad_magic, pos_ - 1, "endianness flag " + std::to_string(e) + " (0 or 1 expected)");
    info.order = e == 0 ? byte_order::little : byte_order::big;
    o_ = info.order;
    auto ls = bytes(1, "long size");
    if (!ls) return unexpected(ls.error());
    info.long_size = std::to_integer<unsigned>((*ls)[0]);
    if (info.long_size != 4 && info.long_size != 8)
      return tc_fail(detail::tc_kind::bad_magic, pos_ - 1, "long size " + std::to_string(info.long_size) + " (4 or 8 expected)");
    auto ps = num(4, "page size");
    if (!ps) return unexpected(ps.error());
    info.page_size = static_cast<std::uint32_t>(*ps);
    auto r = info.version == 6 ? v6(info) : v7(info);
    if (r) return unexpected(*r);
    return info;
  }

 private:
  expected<std::vector<std::byte>, byte_error> bytes(std::uint64_t n, const char* what) {
    if (pos_ > s_.size() || n > s_.size() - pos_)
      return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(pos_),
                     std::string("the file ends inside the ") + what + " (" + std::to_string(n) + " bytes)");
    std::vector<std::byte> v(static_cast<std::size_t>(n));
    if (!s_.read(pos_, v)) return tc_fail(detail::tc_kind::io_error, static_cast<std::size_t>(pos_), std::string("reading the ") + what);
    pos_ += n;
    return v;
  }
  expected<std::uint64_t, byte_error> num(std::size_t n, const char* what) {
    auto b = bytes(n, what);
    if (!b) return unexpected(b.error());
    return tc_get(b->data(), n, o_);
  }
  std::optional<byte_error> skip(std::uint64_t n, const char* what) {
    if (pos_ > s_.size() || n > s_.size() - pos_)
      return detail::tc_error(detail::tc_kind::truncated, static_cast<std::size_t>(pos_),
                            std::string("the ") + what + " declares " + std::to_string(n) + " bytes, " +
                                std::to_string(s_.size() - std::min(pos_, s_.size())) + " remain");
    pos_ += n;
    return std::nullopt;
  }
  expected<std::string, byte_error> cstr(std::size_t max, const char* what) {
    std::string s;
    while (true) {
      auto b = bytes(1, what);
      if (!b) return unexpected(b.error());
      const char c = static_cast<char>(std::to_integer<unsigned char>((*b)[0]));
      if (c == '\0') return s;
      if (s.size() >= max)
        return tc_fail(detail::tc_kind::bad_magic, static_cast<std::size_t>(pos_), std::string("the ") + what + " is not terminated");
      s.push_back(c);
    }
  }
  std::optional<byte_error> label(std::string_view want, const char* what) {
    auto b = bytes(want.size(), what);
    if (!b) return b.error();
    for (std::size_t i = 0; i < want.size(); ++i)
      if (static_cast<char>(std::to_integer<unsigned char>((*b)[i])) != want[i])
        return detail::tc_error(detail::tc_kind::bad_magic, static_cast<std::size_t>(pos_ - want.size()),
                              std::string("expected the ") + what + " label");
    return std::nullopt;
  }
  template <class T> static std::optional<byte_error> err(const expected<T, byte_error>& x) {
    if (x) return std::nullopt;
    return x.error();
  }
  std::optional<byte_error> sized(std::size_t width, const char* what) {
    auto n = num(width, what);
    if (!n) return n.error();
    return skip(*n, what);
  }

  // v6: fixed header sections, then "options  \0" (optional) and the list.
  std::optional<byte_error> v6(trace_dat_info& info) {
    if (auto e = label(std::string_view("header_page\0", 12), "header_page")) return e;
    if (auto e = sized(8, "header_page data")) return e;
    if (auto e = label(std::string_view("header_event\0", 13), "header_event")) return e;
    if (auto e = sized(8, "header_event data")) return e;
    auto nf = num(4, "ftrace format count");
    if (!nf) return nf.error();
    for (std::uint64_t i = 0; i < *nf; ++i)  // each iteration consumes >= 8 bytes or fails
      if (auto e = sized(8, "ftrace event format")) return e;
    auto ns = num(4, "event system count");
    if (!ns) return ns.error();
    for (std::uint64_t i = 0; i < *ns; ++i) {
      auto name = cstr(4096, "event system name");
      if (!name) return name.error();
      auto ne = num(4, "event count");
      if (!ne) return ne.error();
      for (std::uint64_t j = 0; j < *ne; ++j)
        if (auto e = sized(8, "event format")) return e;
    }
    if (auto e = sized(4, "kallsyms")) return e;
    if (auto e = sized(4, "printk formats")) return e;
    if (auto e = sized(8, "saved command lines")) return e;
    if (auto e = err(num(4, "CPU count"))) return e;
    auto kind = bytes(10, "section label");
    if (!kind) return kind.error();
    const std::string k(reinterpret_cast<const char*>(kind->data()), kind->size());
    if (k == std::string("latency  \0", 10) || k == std::string("flyrecord\0", 10)) return std::nullopt;
    if (k != std::string("options  \0", 10))
      return detail::tc_error(detail::tc_kind::bad_magic, static_cast<std::size_t>(pos_ - 10),
                            "expected 'options', 'latency' or 'flyrecord' after the header");
    return options(info, option_framing::v6);
  }

  // v7: compression header, the first options section's offset, then the
  // chain of options sections linked by DONE.
  std::optional<byte_error> v7(trace_dat_info& info) {
    auto name = cstr(64, "compression name");
    if (!name) return name.error();
    info.compression = *name;
    auto cver = cstr(64, "compression version");
    if (!cver) return cver.error();
    auto off = num(8, "options offset");
    if (!off) return off.error();
    std::uint64_t next = *off;
    std::vector<std::uint64_t> seen;
    while (next != 0) {
      for (auto s : seen)
        if (s == next)
          return detail::tc_error(detail::tc_kind::bad_offset, static_cast<std::size_t>(next), "the options sections form a loop");
      if (seen.size() >= 4096)
        return detail::tc_error(detail::tc_kind::bad_offset, static_cast<std::size_t>(next), "more than 4096 options sections");
      seen.push_back(next);
      if (next >= s_.size())
        return detail::tc_error(detail::tc_kind::bad_offset, static_cast<std::size_t>(pos_),
                              "options section offset " + std::to_string(next) + " is outside the file (" +
                                  std::to_string(s_.size()) + " bytes)");
      pos_ = next;
      const std::uint64_t at = pos_;
      auto id = num(2, "section id");
      if (!id) return id.error();
      auto flags = num(2, "section flags");
      if (!flags) return flags.error();
      if (auto e = err(num(4, "section description"))) return e;
      if (auto e = err(num(8, "section size"))) return e;
      if (*id != 0)
        return detail::tc_error(detail::tc_kind::bad_offset, static_cast<std::size_t>(at),
                              "section id " + std::to_string(*id) + " where an options section (id 0) is expected");
      if ((*flags & 1u) != 0)
        return detail::tc_error(detail::tc_kind::compressed_section, static_cast<std::size_t>(at),
                              "the options section is compressed (" + info.compression +
                                  "); convert the file uncompressed first");
      if (auto e = options(info, option_framing::v7)) return e;
      next = next_;
    }
    if (!info.options.time_shift_option) {
      find_unlinked(info);
      if (ro_.use_unlinked_time_shift && info.options.unlinked_time_shift)
        info.options.time_shift_option = info.options.unlinked_time_shift;
    }
    return std::nullopt;
  }

  std::optional<byte_error> options(trace_dat_info& info, option_framing f) {
    next_ = 0;
    while (true) {
      const std::uint64_t at = pos_;
      if (pos_ > s_.size() || s_.size() - pos_ < 2)
        return detail::tc_error(detail::tc_kind::missing_done, static_cast<std::size_t>(at),
                              "the file ends inside the options list (no end marker)");
      auto id = num(2, "option id");
      if (!id) return id.error();
      if (*id == option_done && f == option_framing::v6) return std::nullopt;
      auto size = num(4, "option size");
      if (!size) return size.error();
      if (*id == option_done) {
        if (*size != 8)
          return detail::tc_error(detail::tc_kind::bad_size, static_cast<std::size_t>(at),
                                "the DONE option has " + std::to_string(*size) + " bytes, not 8");
        auto n = num(8, "next options offset");
        if (!n) return n.error();
        next_ = *n;
        return std::nullopt;
      }
      if (*id == option_time_shift || *id == option_tsc2nsec) {
        auto payload = bytes(*size, "option payload");
        if (!payload) return payload.error();
        if (auto e = tc_take(info.options, static_cast<std::uint16_t>(*id), *payload, o_, static_cast<std::size_t>(at)))
          return e;
      } else {
        ++info.options.option_count;
        if (auto e = skip(*size, "option payload")) return e;
      }
    }
  }

  // v7: look for an options section holding a TIME_SHIFT that the chain did
  // not reach. Candidates are section headers (id 0, flags 0) whose first
  // option is TIME_SHIFT; the whole option list must parse inside the
  // section's declared size. The file is read in chunks; the last candidate wins.
  void find_unlinked(trace_dat_info& info) {
    constexpr std::uint64_t chunk = 1u << 20, header = 16;
    // The option id's byte that is 0x0c (TIME_SHIFT = 12) in the file's order.
    const std::uint64_t id_byte = header + (o_ == byte_order::little ? 0 : 1);
    std::vector<std::byte> buf;
    for (std::uint64_t base = 0; base + header + 6 <= s_.size(); base += chunk) {
      const std::uint64_t len = std::min<std::uint64_t>(chunk + header + 6, s_.size() - base);
      buf.resize(static_cast<std::size_t>(len));
      if (!s_.read(base, buf)) return;
      const std::uint64_t last = std::min<std::uint64_t>(chunk, len - header - 6);  // candidate offsets [0, last]
      for (std::uint64_t i = 0; i <= last;) {
        // Jump to the next byte that can be the option id's 0x0c.
        const void* hit = std::memchr(buf.data() + i + id_byte, option_time_shift, static_cast<std::size_t>(last - i + 1));
        if (hit == nullptr) break;
        i = static_cast<std::uint64_t>(static_cast<const std::byte*>(hit) - buf.data()) - id_byte;
        const std::byte* q = buf.data() + i;
        if (tc_get(q, 2, o_) == 0 && tc_get(q + 2, 2, o_) == 0 && tc_get(q + 16, 2, o_) == option_time_shift)
          try_unlinked(info, base + i);
        ++i;
      }
    }
  }
  void try_unlinked(trace_dat_info& info, std::uint64_t at) {
    const std::uint64_t saved_pos = pos_, saved_next = next_;
    trace_dat_info probe;
    pos_ = at + 8;
    auto size = num(8, "section size");
    const std::uint64_t start = pos_;
    if (size && *size <= s_.size() - std::min(start, s_.size()) && !options(probe, option_framing::v7) &&
        pos_ - start <= *size && probe.options.time_shift_option) {
      info.options.unlinked_time_shift = std::move(probe.options.time_shift_option);
      info.options.unlinked_time_shift_at = at;
    }
    pos_ = saved_pos;
    next_ = saved_next;
  }

  const Source& s_;
  dat_read_options ro_{};
  std::uint64_t pos_ = 0;
  byte_order o_ = byte_order::little;
  std::uint64_t next_ = 0;
};

}  // namespace detail

/// Find TIME_SHIFT and TSC2NSEC in a trace.dat file held in memory (format
/// 6: the options list after the fixed header sections; format 7: the
/// options sections from the header's offset, following each DONE's link).
/// Errors: `bad_magic`, `unsupported_version`, `truncated`, `missing_done`,
/// `bad_offset` (outside the file, not an options section, a loop),
/// `compressed_section`, `duplicate_option`, and the decoders' errors (with
/// offsets into the file).
/// A v7 file whose chain has no TIME_SHIFT is searched for an unlinked
/// TIME_SHIFT section (`sync_options::unlinked_time_shift`), used only when
/// `ro.use_unlinked_time_shift` is set.
[[nodiscard]] inline expected<trace_dat_info, byte_error> read_trace_dat(std::span<const std::byte> file,
                                                                             dat_read_options ro = {}) {
  const span_source src(file);
  return detail::dat_parser<span_source>(src, ro).run();
}

/// The same from a file on disk, reading only the header and the options.
/// `io_error` when it cannot be opened or read, or is a directory ("is a
/// directory") or a device (the message of io/file.hpp names the file).
[[nodiscard]] inline expected<trace_dat_info, byte_error> read_trace_dat_file(const std::string& path,
                                                                                  dat_read_options ro = {}) {
  if (auto ok = check_input_file(path); !ok)
    return detail::tc_fail(detail::tc_kind::io_error, byte_error::no_offset, ok.error().message);
  std::ifstream f(path, std::ios::binary);
  if (!f) return detail::tc_fail(detail::tc_kind::io_error, byte_error::no_offset, "cannot open '" + path + "'");
  const file_source src(f);
  return detail::dat_parser<file_source>(src, ro).run();
}

}  // namespace tsync::io
