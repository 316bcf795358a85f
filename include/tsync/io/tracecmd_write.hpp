#pragma once
/// \file
/// trace-cmd's own correction arithmetic, reproduced bit for bit, and the way
/// back: a TIME_SHIFT option built from a tsync sync table, written into a
/// trace.dat that unmodified trace-cmd reads.
///
/// **trace-cmd's arithmetic** (trace-cmd 3.1.6, `timestamp_host_sync()` and
/// `timestamp_correction_calc()` in lib/trace-cmd/trace-input.c, written here
/// from their documented behaviour): with one sample per CPU the offset is
/// added; otherwise the bracketing pair (t0, o0), (t1, o1) is found (the first
/// pair below the first sample, the last pair above the last one, a binary
/// search in between), and with the interpolate flag
///
///     offset = o0 + ((ts - t0) * (o1 - o0) + delta / 2) / delta      delta = t1 - t0
///     result = ((ts * scaling) >> fraction) + offset
///
/// in signed 64-bit arithmetic (C division truncates toward zero); without
/// the flag `offset = o0`. The products wrap on long gaps: `tracecmd_correct`
/// returns both trace-cmd's wrapped value and the value of the same formula
/// in 128-bit arithmetic, and says where they differ.
///
/// **Writing TIME_SHIFT back** (`plan_time_shift`, `rewrite_time_shift`):
/// samples are the tsync table's own corrections at the table's sample times
/// plus points in between, so that every interpolation segment is short enough
/// for trace-cmd's 64-bit product (|ts − t0| · |o1 − o0| + delta/2 < 2^62) and
/// trace-cmd's round-half-up of the chord stays within 2 ns of tsync's floor of
/// the line. A v7 file gets a new uncompressed options section at its end,
/// linked into the options chain in place of the old TIME_SHIFT.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/io/tracecmd.hpp"

namespace tsync::inline TSYNC_ABI::io {

// ---------------------------------------------------------------------------
// trace-cmd's arithmetic
// ---------------------------------------------------------------------------

/// What trace-cmd's formula gives for one event.
struct tracecmd_value {
  std::uint64_t wrapped = 0;  ///< what trace-cmd 3.1.6 computes (its 64-bit intermediates wrap)
  std::uint64_t exact = 0;    ///< the same formula with 128-bit intermediates (equal unless `overflow`)
  bool overflow = false;      ///< an intermediate left the 64-bit range: `wrapped` is garbage
  bool zero_delta = false;    ///< two samples share a time: trace-cmd divides by zero (SIGFPE); `wrapped` = `exact` = ts + o0
};

namespace detail {
using tc_i128 = tsync::i128;
inline std::uint64_t tc_wrap_calc(std::uint64_t ts, const time_shift_sample& lo, const time_shift_sample& hi,
                                  bool interpolate) noexcept {
  // trace-cmd's signed 64-bit intermediates, computed modulo 2^64 on purpose (wrapping_*): the
  // wrap is what this function reproduces; tc_calc flags it.
  std::uint64_t cor = static_cast<std::uint64_t>(lo.offset);
  if (interpolate) {
    const std::uint64_t delta = wrapping_sub(hi.time, lo.time);
    const std::uint64_t prod = wrapping_mul(
        wrapping_sub(ts, lo.time), wrapping_sub(static_cast<std::uint64_t>(hi.offset), static_cast<std::uint64_t>(lo.offset)));
    const auto d = static_cast<std::int64_t>(delta);
    const auto num = static_cast<std::int64_t>(wrapping_add(prod, static_cast<std::uint64_t>(d / 2)));
    // INT64_MIN / -1 cannot happen: delta > 0 here (sorted times, zero checked by the caller).
    cor = wrapping_add(cor, static_cast<std::uint64_t>(num / d));
  }
  const std::uint64_t scaled = lo.fraction >= 64 ? 0 : wrapping_mul(ts, lo.scaling) >> lo.fraction;
  return wrapping_add(scaled, cor);
}
inline tracecmd_value tc_calc(std::uint64_t ts, const time_shift_sample& lo, const time_shift_sample& hi,
                              bool interpolate) noexcept {
  tracecmd_value v;
  constexpr tc_i128 lmin = std::numeric_limits<std::int64_t>::min(), lmax = std::numeric_limits<std::int64_t>::max();
  if (interpolate && hi.time == lo.time) {
    v.zero_delta = true;
    v.wrapped = v.exact = wrapping_add(ts, static_cast<std::uint64_t>(lo.offset));
    return v;
  }
  v.wrapped = tc_wrap_calc(ts, lo, hi, interpolate);
  tc_i128 cor = lo.offset;
  if (interpolate) {
    // trace-cmd casts ts to long long and subtracts a long long time.
    const tc_i128 dt = static_cast<tc_i128>(static_cast<std::int64_t>(ts)) - static_cast<std::int64_t>(lo.time);
    const tc_i128 doff = static_cast<tc_i128>(hi.offset) - lo.offset;
    const tc_i128 delta = static_cast<tc_i128>(static_cast<std::int64_t>(hi.time)) - static_cast<std::int64_t>(lo.time);
    const tc_i128 prod = dt * doff;
    const tc_i128 num = prod + delta / 2;
    if (dt < lmin || dt > lmax || doff < lmin || doff > lmax || delta < lmin || delta > lmax || prod < lmin ||
        prod > lmax || num < lmin || num > lmax)
      v.overflow = true;
    cor += num / delta;
    if (cor < lmin || cor > lmax) v.overflow = true;
  }
  const tc_i128 scaled = lo.fraction >= 64 ? 0 : (static_cast<tc_i128>(ts) * lo.scaling) >> lo.fraction;
  if (static_cast<tsync::u128>(ts) * lo.scaling > std::numeric_limits<std::uint64_t>::max()) v.overflow = true;
  const tc_i128 r = scaled + cor;
  if (r < 0 || r > static_cast<tc_i128>(std::numeric_limits<std::uint64_t>::max())) v.overflow = true;
  v.exact = static_cast<std::uint64_t>(r);
  if (v.exact != v.wrapped) v.overflow = true;
  return v;
}
}  // namespace detail

/// trace-cmd 3.1.6's correction of raw guest time `ts` with one CPU's samples
/// (sorted by time, as trace-cmd sorts them), bit for bit, and the exact value
/// of the same formula. An empty `samples` returns `ts` (trace-cmd leaves a CPU
/// without samples uncorrected).
[[nodiscard]] inline tracecmd_value tracecmd_correct(std::uint64_t ts, std::span<const time_shift_sample> s,
                                                     bool interpolate) noexcept {
  const std::size_t n = s.size();
  if (n == 0) return tracecmd_value{ts, ts, false, false};
  if (n == 1) {
    const std::uint64_t r = wrapping_add(ts, static_cast<std::uint64_t>(s[0].offset));
    const detail::tc_i128 e = static_cast<detail::tc_i128>(ts) + s[0].offset;
    return tracecmd_value{r, r, e < 0 || e > static_cast<detail::tc_i128>(std::numeric_limits<std::uint64_t>::max()), false};
  }
  if (n == 2 || ts <= s[0].time) return detail::tc_calc(ts, s[0], s[1], interpolate);
  if (ts >= s[n - 1].time) return detail::tc_calc(ts, s[n - 2], s[n - 1], interpolate);
  // trace-cmd's binary search (ints; n >= 3 and s[0].time < ts < s[n-1].time here).
  std::size_t lo = 0, hi = n - 1, mid = (n - 1) / 2;
  while (lo <= hi) {
    if (ts < s[mid].time) hi = mid - 1;
    else if (ts > s[mid].time) lo = mid + 1;
    else break;
    mid = (lo + hi) / 2;
  }
  return detail::tc_calc(ts, s[mid], s[mid + 1], interpolate);
}

/// trace-cmd's view of a sync table: its samples as TIME_SHIFT samples.
[[nodiscard]] inline std::vector<time_shift_sample> to_time_shift_samples(std::span<const sync_sample> samples) {
  std::vector<time_shift_sample> out;
  out.reserve(samples.size());
  for (const auto& s : samples)
    out.push_back(time_shift_sample{static_cast<std::uint64_t>(raw_ns(s.guest_time)), s.offset.count(), s.ratio, s.frac_bits});
  return out;
}

/// How far trace-cmd's arithmetic lands from the exact correction on a trace
/// with trace-cmd's default schedule (two samples per CPU, one at each end).
struct tracecmd_error_stats {
  std::uint64_t events = 0;     ///< events evaluated (evenly spaced over the trace)
  std::uint64_t overflowed = 0; ///< events where trace-cmd's 64-bit product wraps
  std::uint64_t off = 0;        ///< events more than 2 ns from the exact correction
  std::uint64_t max_error = 0;  ///< largest |trace-cmd − exact| in ns
};

/// The error of trace-cmd's interpolation on a trace `length_ns` long whose
/// guest clock drifts `drift_ppb` (parts per billion) from the host's: samples
/// at the start (guest time `start_ns`, offset 0) and at the end (offset =
/// drift × length), `events` (>= 2) events evenly spaced from start to end,
/// each compared with floor of the exact line.
[[nodiscard]] inline tracecmd_error_stats tracecmd_two_sample_error(std::int64_t drift_ppb, std::int64_t length_ns,
                                                                    std::uint64_t events,
                                                                    std::int64_t start_ns = 1'000'000'000'000) noexcept {
  tracecmd_error_stats st;
  if (events < 2 || length_ns <= 0 || start_ns < 0) return st;
  const detail::tc_i128 rise = static_cast<detail::tc_i128>(drift_ppb) * length_ns / 1'000'000'000;
  const std::array<time_shift_sample, 2> s{
      time_shift_sample{static_cast<std::uint64_t>(start_ns), 0, 1, 0},
      time_shift_sample{static_cast<std::uint64_t>(start_ns + length_ns), static_cast<std::int64_t>(rise), 1, 0}};
  for (std::uint64_t i = 0; i < events; ++i) {
    const detail::tc_i128 dt = static_cast<detail::tc_i128>(length_ns) * i / (events - 1);
    const auto ts = static_cast<std::uint64_t>(start_ns + dt);
    detail::tc_i128 num = dt * rise, q = num / length_ns;
    if (num % length_ns != 0 && num < 0) --q;  // floor
    const detail::tc_i128 exact = static_cast<detail::tc_i128>(ts) + q;
    const auto v = tracecmd_correct(ts, s, true);
    const detail::tc_i128 err = static_cast<detail::tc_i128>(v.wrapped) - exact;
    const auto mag = static_cast<std::uint64_t>(err < 0 ? -err : err);
    ++st.events;
    if (v.overflow) ++st.overflowed;
    if (mag > 2) ++st.off;
    st.max_error = std::max(st.max_error, mag);
  }
  return st;
}

// ---------------------------------------------------------------------------
// Samples that trace-cmd cannot get wrong
// ---------------------------------------------------------------------------

/// What `plan_time_shift` covers.
struct time_shift_plan_options {
  std::int64_t from = 0;      ///< first guest time to cover (trace-cmd times are unsigned: 0 covers all before)
  std::int64_t until = -1;    ///< last guest time to cover; -1: twice the table's last sample time (at least 1 h past it)
  std::uint64_t max_samples = 1u << 20;  ///< refuse plans larger than this
};

namespace detail {
// trace-cmd's product bound on one segment: every ts in [a.time, b.time] gives
// |ts - t0| * |o1 - o0| + delta/2 below 2^62 (a factor 2 of margin).
inline bool tc_segment_safe(const time_shift_sample& a, const time_shift_sample& b) noexcept {
  const tc_i128 dt = static_cast<tc_i128>(b.time) - static_cast<tc_i128>(a.time);
  tc_i128 doff = static_cast<tc_i128>(b.offset) - a.offset;
  if (doff < 0) doff = -doff;
  return dt * doff + dt / 2 < (static_cast<tc_i128>(1) << 62);
}
// Segment length whose product stays below 2^61 at slope |rise/run|.
inline std::uint64_t tc_safe_step(tc_i128 rise, tc_i128 run) noexcept {
  if (rise < 0) rise = -rise;
  const double slope = run <= 0 ? 1.0 : static_cast<double>(rise) / static_cast<double>(run);
  const double lim = std::ldexp(1.0, 61);
  double l = slope <= 0 ? lim : std::sqrt(lim / slope);
  l = std::min(l, lim / 2);
  return static_cast<std::uint64_t>(std::max(l, 1024.0));
}
}  // namespace detail

/// TIME_SHIFT samples (interpolate flag) for which trace-cmd's arithmetic on
/// every guest time in [from, until] cannot overflow and lands within 2 ns of
/// `table.correct()`. The samples hold the table's own corrections (offset =
/// correct(t) − t) at `from`, at every table sample time inside the range, and
/// at points in between, spaced so that each segment's product stays far from
/// 2^63. Errors: `scaled_interpolation` (the table is not an unscaled
/// interpolation table), `time_out_of_range` (an empty or negative range, or
/// the table cannot correct a point of it), `count_exceeds_payload` (more than
/// `max_samples`).
[[nodiscard]] inline expected<std::vector<time_shift_sample>, byte_error> plan_time_shift(
    const correct::sync_table& table, time_shift_plan_options po = {}) {
  using detail::tc_fail;
  const auto smp = table.samples();
  if (table.options().mode != correct::correction_mode::interpolate || smp.empty())
    return tc_fail(detail::tc_kind::scaled_interpolation, byte_error::no_offset,
                   "only interpolation tables can be written as an interpolating TIME_SHIFT");
  for (const auto& s : smp)
    if (s.ratio != (std::uint64_t{1} << s.frac_bits))
      return tc_fail(detail::tc_kind::scaled_interpolation, byte_error::no_offset, "the table has scaled samples");
  const std::int64_t last = raw_ns(smp.back().guest_time);
  std::int64_t until = po.until;
  if (until < 0) until = last > std::numeric_limits<std::int64_t>::max() / 2 ? std::numeric_limits<std::int64_t>::max() : std::max(2 * last, last + 3'600'000'000'000);
  if (po.from < 0 || until <= po.from)
    return tc_fail(detail::tc_kind::time_out_of_range, byte_error::no_offset,
                   "the range to cover [" + std::to_string(po.from) + ", " + std::to_string(until) + "] is empty or negative");
  // Knots: from, every table time strictly inside, until.
  std::vector<std::int64_t> knots{po.from};
  for (const auto& s : smp)
    if (const std::int64_t g = raw_ns(s.guest_time); g > po.from && g < until && g != knots.back()) knots.push_back(g);
  knots.push_back(until);
  std::vector<time_shift_sample> out;
  auto add = [&](std::int64_t t) -> std::optional<byte_error> {
    auto h = table.correct(at_ns<guest>(t));
    if (!h)
      return detail::tc_error(detail::tc_kind::time_out_of_range, byte_error::no_offset,
                            "the table cannot correct guest time " + std::to_string(t) + ": " + to_string(h.error()));
    if (out.size() >= po.max_samples)
      return detail::tc_error(detail::tc_kind::count_exceeds_payload, byte_error::no_offset,
                            "more than " + std::to_string(po.max_samples) + " samples would be needed");
    out.push_back(time_shift_sample{static_cast<std::uint64_t>(t), raw_ns(*h) - t, 1, 0});
    return std::nullopt;
  };
  if (auto e = add(knots[0])) return unexpected(*e);
  for (std::size_t k = 1; k < knots.size(); ++k) {
    const std::int64_t a = knots[k - 1], b = knots[k];
    const auto oa = out.back().offset;
    auto hb = table.correct(at_ns<guest>(b));
    if (!hb) return tc_fail(detail::tc_kind::time_out_of_range, byte_error::no_offset,
                            "the table cannot correct guest time " + std::to_string(b) + ": " + to_string(hb.error()));
    std::uint64_t step = detail::tc_safe_step(static_cast<detail::tc_i128>(raw_ns(*hb) - b) - oa, static_cast<detail::tc_i128>(b) - a);
    while (true) {
      const std::size_t mark = out.size();
      bool ok = true;
      for (std::int64_t t = a; static_cast<std::uint64_t>(b - t) > step;) {
        t += static_cast<std::int64_t>(step);
        if (auto e = add(t)) return unexpected(*e);
        if (!detail::tc_segment_safe(out[out.size() - 2], out.back())) { ok = false; break; }
      }
      if (ok) {
        if (auto e = add(b)) return unexpected(*e);
        ok = detail::tc_segment_safe(out[out.size() - 2], out.back());
      }
      if (ok) break;
      out.resize(mark);
      if (step <= 1024) return tc_fail(detail::tc_kind::count_exceeds_payload, byte_error::no_offset,
                                       "no safe sample spacing near guest time " + std::to_string(a));
      step /= 2;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Rewriting a trace.dat's TIME_SHIFT
// ---------------------------------------------------------------------------

/// What `rewrite_time_shift` did, for the user.
struct time_shift_rewrite {
  std::vector<std::byte> file;         ///< the new file
  std::uint64_t new_section_at = 0;    ///< file offset of the new options section
  bool replaced = false;               ///< an old TIME_SHIFT was taken out of the chain
  bool old_section_unlinked = false;   ///< ... by unlinking its options section (it held nothing else)
  bool old_option_renamed = false;     ///< ... by renaming its option id (`option_retired_time_shift`)
};

/// The id an old TIME_SHIFT gets when it shares its options section with
/// other options (trace-cmd 3.1.6 skips unknown ids).
inline constexpr std::uint16_t option_retired_time_shift = 0x7FFF;

namespace detail {
struct tc_v7_section {
  std::uint64_t at = 0;          // section header offset
  std::uint64_t link_at = 0;     // where the offset pointing at this section is stored
  std::uint64_t done_next_at = 0;  // where this section's DONE stores the next offset
  std::uint64_t ts_option_at = 0;  // the TIME_SHIFT option's offset (0: none)
  std::size_t options = 0;         // options other than DONE
};
inline expected<std::uint64_t, byte_error> tc_skip_cstr(std::span<const std::byte> f, std::uint64_t p) {
  while (p < f.size() && f[static_cast<std::size_t>(p)] != std::byte{0}) ++p;
  if (p >= f.size()) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), "unterminated header string");
  return p + 1;
}
inline expected<std::vector<tc_v7_section>, byte_error> tc_v7_chain(std::span<const std::byte> f, byte_order o) {
  std::uint64_t p = 10;
  for (int i = 0; i < 1; ++i) {
    auto q = tc_skip_cstr(f, p);
    if (!q) return unexpected(q.error());
    p = *q + 2 + 4;  // endianness, long size, page size
  }
  for (int i = 0; i < 2; ++i) {
    auto q = tc_skip_cstr(f, p);
    if (!q) return unexpected(q.error());
    p = *q;
  }
  if (p + 8 > f.size()) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), "no options offset");
  std::vector<tc_v7_section> out;
  std::uint64_t link = p, next = tc_get(f.data() + p, 8, o);
  while (next != 0) {
    if (out.size() > 4096 || next > f.size() || f.size() - next < 16)
      return tc_fail(detail::tc_kind::bad_offset, static_cast<std::size_t>(link), "options chain leaves the file or loops");
    tc_v7_section s{next, link, 0, 0, 0};
    if (tc_get(f.data() + next + 2, 2, o) & 1u)
      return tc_fail(detail::tc_kind::compressed_section, static_cast<std::size_t>(next),
                     "a compressed options section (write the file uncompressed: trace-cmd convert)");
    std::uint64_t q = next + 16;
    while (true) {
      if (q + 6 > f.size()) return tc_fail(detail::tc_kind::missing_done, static_cast<std::size_t>(q), "options list without DONE");
      const auto id = tc_get(f.data() + q, 2, o);
      const auto size = tc_get(f.data() + q + 2, 4, o);
      if (size > f.size() - q - 6) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(q), "option past the end");
      if (id == option_done) {
        if (size != 8) return tc_fail(detail::tc_kind::bad_size, static_cast<std::size_t>(q), "DONE is not 8 bytes");
        s.done_next_at = q + 6;
        break;
      }
      if (id == option_time_shift) s.ts_option_at = q;
      ++s.options;
      q += 6 + size;
    }
    out.push_back(s);
    link = s.done_next_at;
    next = tc_get(f.data() + link, 8, o);
  }
  if (out.empty()) return tc_fail(detail::tc_kind::bad_offset, static_cast<std::size_t>(p), "the file has no options section");
  return out;
}
inline void tc_set(std::vector<std::byte>& f, std::uint64_t at, std::uint64_t v, std::size_t n, byte_order o) {
  std::vector<std::byte> b;
  tc_put(b, v, n, o);
  std::copy(b.begin(), b.end(), f.begin() + static_cast<std::ptrdiff_t>(at));
}

/// Where the parts of a format-6 file are: the options list (if any), the
/// section label after it, the CPU count and the flyrecord offset table.
struct tc_v6_layout {
  std::uint64_t cpus_at = 0;       // the u32 CPU count
  std::uint64_t options_at = 0;    // the "options  \0" label, or the section label when there is no options list
  bool has_options = false;
  std::uint64_t list_at = 0;       // the first option (after the label)
  std::uint64_t label_at = 0;      // "flyrecord\0" / "latency  \0"
  bool flyrecord = false;
  std::uint64_t table_end = 0;     // flyrecord: after the (offset, size) pairs; latency: after the label
  std::uint32_t cpus = 0;
};
inline expected<std::uint64_t, byte_error> tc_v6_sized(std::span<const std::byte> f, std::uint64_t p, std::size_t width,
                                                           byte_order o, const char* what) {
  if (p + width > f.size()) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), std::string("no ") + what + " size");
  const std::uint64_t n = tc_get(f.data() + p, width, o);
  if (n > f.size() - p - width) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), std::string(what) + " past the end");
  return p + width + n;
}
inline bool tc_label_at(std::span<const std::byte> f, std::uint64_t p, std::string_view l) {
  if (p + l.size() > f.size()) return false;
  for (std::size_t i = 0; i < l.size(); ++i)
    if (static_cast<char>(std::to_integer<unsigned char>(f[static_cast<std::size_t>(p) + i])) != l[i]) return false;
  return true;
}
/// The layout of a format-6 file that `read_trace_dat` accepted.
inline expected<tc_v6_layout, byte_error> tc_v6_scan(std::span<const std::byte> f, byte_order o) {
  std::uint64_t p = 10;
  auto q = tc_skip_cstr(f, p);  // version
  if (!q) return unexpected(q.error());
  p = *q + 2 + 4;  // endianness, long size, page size
  auto step = [&](std::size_t w, const char* what) -> std::optional<byte_error> {
    auto r = tc_v6_sized(f, p, w, o, what);
    if (!r) return r.error();
    p = *r;
    return std::nullopt;
  };
  p += 12;  // "header_page\0"
  if (auto e = step(8, "header_page")) return unexpected(*e);
  p += 13;  // "header_event\0"
  if (auto e = step(8, "header_event")) return unexpected(*e);
  if (p + 4 > f.size()) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), "no ftrace format count");
  for (std::uint64_t n = tc_get(f.data() + p, 4, o), i = (p += 4, 0); i < n; ++i)
    if (auto e = step(8, "ftrace format")) return unexpected(*e);
  if (p + 4 > f.size()) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), "no system count");
  for (std::uint64_t ns = tc_get(f.data() + p, 4, o), i = (p += 4, 0); i < ns; ++i) {
    auto z = tc_skip_cstr(f, p);
    if (!z) return unexpected(z.error());
    p = *z;
    if (p + 4 > f.size()) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), "no event count");
    for (std::uint64_t ne = tc_get(f.data() + p, 4, o), j = (p += 4, 0); j < ne; ++j)
      if (auto e = step(8, "event format")) return unexpected(*e);
  }
  if (auto e = step(4, "kallsyms")) return unexpected(*e);
  if (auto e = step(4, "printk formats")) return unexpected(*e);
  if (auto e = step(8, "saved command lines")) return unexpected(*e);
  tc_v6_layout l;
  if (p + 4 > f.size()) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), "no CPU count");
  l.cpus_at = p;
  l.cpus = static_cast<std::uint32_t>(tc_get(f.data() + p, 4, o));
  p += 4;
  l.options_at = p;
  if (tc_label_at(f, p, std::string_view("options  \0", 10))) {
    l.has_options = true;
    p += 10;
    l.list_at = p;
    for (;;) {
      if (p + 2 > f.size()) return tc_fail(detail::tc_kind::missing_done, static_cast<std::size_t>(p), "options list without its end");
      if (tc_get(f.data() + p, 2, o) == option_done) {
        p += 2;
        break;
      }
      auto r = tc_v6_sized(f, p + 2, 4, o, "option");
      if (!r) return unexpected(r.error());
      p = *r;
    }
  }
  l.label_at = p;
  if (tc_label_at(f, p, std::string_view("flyrecord\0", 10))) {
    l.flyrecord = true;
    p += 10;
    const std::uint64_t table = std::uint64_t{16} * l.cpus;
    if (table > f.size() - p) return tc_fail(detail::tc_kind::truncated, static_cast<std::size_t>(p), "the CPU data table is cut");
    l.table_end = p + table;
  } else if (tc_label_at(f, p, std::string_view("latency  \0", 10))) {
    l.table_end = p + 10;
  } else {
    return tc_fail(detail::tc_kind::bad_magic, static_cast<std::size_t>(p), "expected 'flyrecord' or 'latency' after the options");
  }
  return l;
}

/// The format-6 rewrite: the options list without its TIME_SHIFT plus `payload`,
/// and the CPU data moved by whole pages (the flyrecord offsets follow it).
inline expected<time_shift_rewrite, byte_error> tc_v6_rewrite(std::span<const std::byte> f, byte_order o,
                                                                  std::uint32_t page_size, std::span<const std::byte> payload) {
  auto lay = tc_v6_scan(f, o);
  if (!lay) return unexpected(lay.error());
  const tc_v6_layout& l = *lay;
  if (page_size == 0 || (page_size & (page_size - 1)) != 0)
    return tc_fail(detail::tc_kind::bad_size, 0, "page size " + std::to_string(page_size) + " is not a power of two");
  time_shift_rewrite r;
  r.file.assign(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(l.options_at));
  const std::string_view opt_label("options  \0", 10);
  for (const char c : opt_label) r.file.push_back(static_cast<std::byte>(c));
  r.new_section_at = r.file.size();
  for (std::uint64_t p = l.list_at; l.has_options;) {  // the old options, TIME_SHIFT left out
    const auto id = tc_get(f.data() + p, 2, o);
    if (id == option_done) break;
    const auto size = tc_get(f.data() + p + 2, 4, o);
    if (id == option_time_shift) {
      r.replaced = true;
    } else {
      r.file.insert(r.file.end(), f.begin() + static_cast<std::ptrdiff_t>(p), f.begin() + static_cast<std::ptrdiff_t>(p + 6 + size));
    }
    p += 6 + size;
  }
  append_option(r.file, option_time_shift, payload, o);
  append_options_end(r.file, o, option_framing::v6);
  const std::uint64_t shift_from = r.file.size();
  r.file.insert(r.file.end(), f.begin() + static_cast<std::ptrdiff_t>(l.label_at), f.begin() + static_cast<std::ptrdiff_t>(l.table_end));
  if (!l.flyrecord) {  // latency: text follows, no offsets
    r.file.insert(r.file.end(), f.begin() + static_cast<std::ptrdiff_t>(l.table_end), f.end());
    return r;
  }
  const auto align = [&](std::uint64_t v) { return (v + page_size - 1) & ~std::uint64_t{page_size - 1}; };
  const std::uint64_t old_data = align(l.table_end), new_data = align(r.file.size());
  const std::uint64_t table_at = l.label_at + 10, new_table_at = shift_from + 10;
  for (std::uint32_t c = 0; c < l.cpus; ++c) {
    const std::uint64_t off = tc_get(f.data() + table_at + 16 * c, 8, o);
    const std::uint64_t size = tc_get(f.data() + table_at + 16 * c + 8, 8, o);
    if (size == 0) continue;
    if (off < old_data || off > f.size() || size > f.size() - off)
      return tc_fail(detail::tc_kind::bad_offset, static_cast<std::size_t>(table_at + 16 * c),
                     "CPU " + std::to_string(c) + "'s data (offset " + std::to_string(off) + ", " + std::to_string(size) +
                         " bytes) is not after the header or leaves the file");
    tc_set(r.file, new_table_at + 16 * c, off - old_data + new_data, 8, o);
  }
  r.file.resize(static_cast<std::size_t>(new_data), std::byte{0});
  if (old_data < f.size()) r.file.insert(r.file.end(), f.begin() + static_cast<std::ptrdiff_t>(old_data), f.end());
  return r;
}
}  // namespace detail

/// A copy of trace.dat `file` whose options hold `ts` as the only TIME_SHIFT.
/// Format 6: the options list is written again without the old TIME_SHIFT and
/// with the new one (an options list is added when the file has none), and the
/// CPU data after it moves by whole pages, its flyrecord offsets with it.
/// Format 7: a new uncompressed options section (TIME_SHIFT,
/// DONE) is appended and linked where the old TIME_SHIFT's section was (that
/// section is unlinked when it held nothing else, otherwise the old option's id
/// becomes `option_retired_time_shift`), or at the end of the chain.
/// Errors: the file reader's errors, `compressed_section`, `bad_offset` (v6 CPU
/// data before the header's end), the encoder's.
[[nodiscard]] inline expected<time_shift_rewrite, byte_error> rewrite_time_shift(std::span<const std::byte> file,
                                                                                      const time_shift& ts) {
  auto info = read_trace_dat(file);
  if (!info) return unexpected(info.error());
  const byte_order o = info->order;
  if (info->version == 6) {
    auto payload = encode_time_shift(ts, o);
    if (!payload) return unexpected(payload.error());
    return detail::tc_v6_rewrite(file, o, info->page_size, *payload);
  }
  auto chain = detail::tc_v7_chain(file, o);
  if (!chain) return unexpected(chain.error());
  auto payload = encode_time_shift(ts, o);
  if (!payload) return unexpected(payload.error());
  time_shift_rewrite r;
  r.file.assign(file.begin(), file.end());
  r.new_section_at = r.file.size();
  const auto& first = chain->front();
  std::vector<std::byte> list;
  append_option(list, option_time_shift, *payload, o);
  std::uint64_t after = 0, link_at = chain->back().done_next_at;
  for (const auto& s : *chain) {
    if (s.ts_option_at == 0) continue;
    r.replaced = true;
    if (s.options == 1) {
      r.old_section_unlinked = true;
      link_at = s.link_at;
      after = detail::tc_get(file.data() + s.done_next_at, 8, o);
    } else {
      r.old_option_renamed = true;
      detail::tc_set(r.file, s.ts_option_at, option_retired_time_shift, 2, o);
    }
    break;
  }
  append_options_end(list, o, option_framing::v7, after);
  detail::tc_put(r.file, 0, 2, o);  // section id: options
  detail::tc_put(r.file, 0, 2, o);  // flags: uncompressed
  detail::tc_put(r.file, detail::tc_get(file.data() + first.at + 4, 4, o), 4, o);  // description, as the first section's
  detail::tc_put(r.file, list.size(), 8, o);
  r.file.insert(r.file.end(), list.begin(), list.end());
  detail::tc_set(r.file, link_at, r.new_section_at, 8, o);
  return r;
}

}  // namespace tsync::io
