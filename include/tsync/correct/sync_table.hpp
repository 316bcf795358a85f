#pragma once
/// \file
/// A per-vCPU sync table and its reference correction (binary search).
///
/// A table holds `sync_sample`s `(guest_time, offset, ratio, frac_bits, bounds)`
/// sorted by guest time, and maps a guest time `t` to a host time in one of two
/// modes (see docs/correction.md for the full statement of every rule):
///
/// * `correction_mode::interpolate` (probe-based sync). Between the samples
///   `(t0, o0)` and `(t1, o1)` that bracket `t` (`t0 <= t < t1`):
///
///       host(t) = t + o0 + floor((o1 − o0) * (t − t0) / (t1 − t0))
///
///   computed exactly (no intermediate can wrap; the floor is the exact floor of
///   the rational number). At a sample time the result is exactly `t + offset`.
///   Samples must be unscaled (`ratio == 2^frac_bits`): drift lives in the offset.
/// * `correction_mode::step` (KVM). The sample with the greatest time `<= t`
///   applies, with the exact KVM inverse including scaling:
///
///       host(t) = ceil((t + offset) * 2^frac_bits / ratio)
///
///   computed exactly over the integers (it equals `kvm::to_host` whenever
///   `0 <= t + offset < 2^64`; there is no modulo-2^64 wrap).
///
/// Outside the sampled range `[first time, last time]` the `outside_policy`
/// decides: `extrapolate` (interpolate: continue the nearest segment's line;
/// step: the nearest sample holds), `clamp` (the nearest sample's offset holds),
/// or `reject` (`errc::out_of_range`).
///
/// Results are signed 64-bit. A host time outside `int64_t` is `errc::overflow`,
/// never a wrapped value.
///
/// Typed time: the scalar entry points (`correct`, `offset_at`, `bounds_at`,
/// `to_guest`) take and return `domain_time<guest>` / `domain_time<host>` (and
/// `offset<guest, host>`), so a host time cannot be corrected as a guest time.
/// The region accessors below and the span overloads of the batch and cursor
/// paths (correct/batch.hpp, correct/cursor.hpp) stay over raw `int64_t` guest
/// times: they are the hot paths, and their names state the domain.
///
/// Equal guest times: the input must be sorted by guest time (non-decreasing);
/// of several samples with the same guest time the **last one in input order
/// wins** (a later measurement supersedes an earlier one).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/correct/exact.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::correct {

/// How offsets between samples are obtained.
enum class correction_mode : std::uint8_t {
  interpolate,  ///< linear interpolation of the offset (probe-based sync)
  step,         ///< the last sample at or before the event applies (KVM)
};

/// What happens to an event outside `[first sample time, last sample time]`.
enum class outside_policy : std::uint8_t {
  extrapolate,  ///< interpolate: extend the nearest segment's line; step: the nearest sample holds
  clamp,        ///< the nearest sample's offset holds (same as extrapolate in step mode)
  reject,       ///< `errc::out_of_range`
};

/// Options of a table.
struct table_options {
  correction_mode mode = correction_mode::interpolate;  ///< interpolate or step
  outside_policy outside = outside_policy::extrapolate; ///< policy outside the sampled range
};

/// Check samples for `sync_table::make`: `errc::empty_input` (index 0) for no
/// samples; per sample (the index of the first bad one) `errc::bad_frac_bits`
/// (frac_bits > 63), `errc::zero_ratio`, `errc::invalid_argument` (bounds with
/// lo > 0 or hi < 0), `errc::unsorted_input` (guest time below the previous
/// one), and in interpolate mode `errc::unsupported` for a scaled sample.
[[nodiscard]] inline expected<void, index_error> validate(std::span<const sync_sample> s,
                                                          correction_mode mode) noexcept {
  if (s.empty()) return unexpected(index_error{errc::empty_input, 0});
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto& x = s[i];
    errc e = errc::ok;
    if (x.frac_bits > 63) e = errc::bad_frac_bits;
    else if (x.ratio == 0) e = errc::zero_ratio;
    else if (x.bounds && (x.bounds->lo > 0 || x.bounds->hi < 0)) e = errc::invalid_argument;
    else if (i > 0 && x.guest_time < s[i - 1].guest_time) e = errc::unsorted_input;
    else if (mode == correction_mode::interpolate && x.ratio != (std::uint64_t{1} << x.frac_bits)) e = errc::unsupported;
    if (e != errc::ok) return unexpected(index_error{e, i});
  }
  return {};
}

/// Deprecated (one release): the first invalid sample of an input; use
/// `index_error` (same fields, code first).
struct [[deprecated("use tsync::index_error")]] sample_error {
  std::size_t index = 0;        ///< index into the input sequence
  errc code = errc::ok;         ///< what is wrong with it
};

/// Deprecated (one release): use `validate(samples, mode)`, which returns
/// `expected<void, index_error>`.
template <class = void>
[[deprecated("use correct::validate(samples, mode)")]] [[nodiscard]] inline std::optional<index_error> check_samples(
    std::span<const sync_sample> s, correction_mode mode) noexcept {
  if (auto v = validate(s, mode); !v) return v.error();
  return std::nullopt;
}

/// Sort samples by guest time, keeping the input order of equal times (so that
/// the de-duplication rule "last one wins" keeps meaning "latest measurement").
template <class = void>
inline void sort_samples(std::vector<sync_sample>& s) {
  std::stable_sort(s.begin(), s.end(),
                   [](const sync_sample& a, const sync_sample& b) { return a.guest_time < b.guest_time; });
}

/// Precomputed fast-path parameters of one region of a table (a region is the
/// guest-time interval between two consecutive samples, or before the first /
/// after the last). On a region the exact map is `host(t) = H + floor(S * x / den)`
/// with `x = t − anchor`, `H` the host time at the anchor and `S / den` the
/// slope of host over guest time (`S = den + rise of the offset`). With
/// `S = q * den + r` (`0 <= r < den`) and all operations modulo 2^64:
///
///     x    = t − anchor
///     e    = floor(m * x / 2^64)                 // m = floor(r * 2^64 / den)
///     e   += ((r * x − e * den) >= den)          // exact correction: e = floor(r * x / den)
///     host = hbase + q * x + e                   // hbase = H
///
/// This equals the exact result (proof in docs/correction.md: `e` is at most
/// one below the true floor; the remainder lies in `[0, 2 den)` with
/// `den <= 2^63`, so it is exact modulo 2^64; `[lo, hi]` is chosen so that
/// every true result fits `int64_t`, which makes the modulo-2^64 sum exact).
/// The scalar form skips the correction when the low half of `m * x` plus `x`
/// does not carry, since only then can `e` be one below the floor.
///
/// Short form: when `(hi − anchor) * den < 2^64` (segments up to about 4 s in
/// ns), `e = floor(mc * x / 2^64)` with the rounded-up `mc = ceil(r * 2^64 / den)`
/// is exact with no correction at all (`short_form`; proof in docs/correction.md).
/// `lo > hi` means "no fast range".
struct region_kernel {
  std::int64_t lo = 1;        ///< first guest time of the fast range
  std::int64_t hi = 0;        ///< last guest time of the fast range
  std::uint64_t anchor = 0;   ///< guest time where x = 0 (bits of an int64)
  std::uint64_t hbase = 0;    ///< host time at the anchor (bits of an int64, modulo 2^64)
  std::uint64_t q = 1;        ///< floor(S / den), modulo 2^64 (1 for a constant offset)
  std::uint64_t r = 0;        ///< S − q * den, in [0, den)
  std::uint64_t den = 1;      ///< segment length in guest time (<= 2^63)
  std::uint64_t m = 0;        ///< floor(r * 2^64 / den)
  std::uint64_t mc = 0;       ///< ceil(r * 2^64 / den) (short form)
  bool short_form = true;     ///< (hi − anchor) * den < 2^64: `apply_short` is exact
  // The streaming cursor's kernels (see cursor.hpp), all with x = t − anchor and
  // set only when the fast range starts at the anchor (`len* = 0`: unused):
  std::uint64_t len64 = 0;    ///< x < len64: host = hbase + x + ((int64)(m64 * x) >> sh64)
  std::uint64_t m64 = 0;      ///< ceil(σ * 2^sh64 / den) as int64 bits, σ = S − den
  unsigned sh64 = 0;          ///< smallest shift with (hi − lo) * den < 2^sh64
  std::uint64_t len128 = 0;   ///< x < len128 (short form): host = hbase + x + floor(s * x / 2^64), s = int64(mc)
  std::uint64_t len_long = 0; ///< x < len_long (long segments): the same with s = int64(m), exact unless low(s * x) + x carries

  /// True when `t` is in the fast range.
  [[nodiscard]] constexpr bool contains(std::int64_t t) const noexcept { return t >= lo && t <= hi; }
  /// The fast formula, scalar (one 64×64→128 product; the exact correction
  /// only when a carry makes it possible). Precondition: `contains(t)`.
  [[nodiscard]] constexpr std::int64_t apply(std::int64_t t) const noexcept {
    const std::uint64_t x = static_cast<std::uint64_t>(t) - anchor;
    const u128 p = static_cast<u128>(m) * x;
    std::uint64_t e = static_cast<std::uint64_t>(p >> 64);
    const std::uint64_t low = static_cast<std::uint64_t>(p);
    if (low + x < low) [[unlikely]]
      e += (r * x - e * den) >= den ? 1u : 0u;
    const std::uint64_t qx = q == 1 ? x : q * x;
    return static_cast<std::int64_t>(hbase + qx + e);
  }
  /// The short form (precondition: `contains(t) && short_form`): one product, no correction.
  [[nodiscard]] constexpr std::int64_t apply_short(std::int64_t t) const noexcept {
    const std::uint64_t x = static_cast<std::uint64_t>(t) - anchor;
    return static_cast<std::int64_t>(hbase + q * x + mulhi_u64(mc, x));
  }
  /// The same formula with 32-bit partial products and an unconditional
  /// correction (branch-free, vectorisable); identical result.
  [[nodiscard]] constexpr std::int64_t apply_portable(std::int64_t t) const noexcept {
    const std::uint64_t x = static_cast<std::uint64_t>(t) - anchor;
    std::uint64_t e = mulhi_u64_portable(m, x);
    e += (r * x - e * den) >= den ? 1u : 0u;
    return static_cast<std::int64_t>(hbase + q * x + e);
  }
};

/// A validated, de-duplicated per-vCPU sync table. Build with `make`.
class sync_table {
 public:
  static constexpr std::int64_t min_time = std::numeric_limits<std::int64_t>::min();
  static constexpr std::int64_t max_time = std::numeric_limits<std::int64_t>::max();

  /// Build a table from samples sorted by guest time (see `validate(samples, mode)` for
  /// the errors; equal guest times: the last one in input order wins).
  template <class = void>
  [[nodiscard]] static expected<sync_table, errc> make(std::vector<sync_sample> samples,
                                                       table_options opt = {}) {
    if (auto v = validate(samples, opt.mode); !v) return unexpected(v.error().code);
    sync_table t;
    t.opt_ = opt;
    // De-duplicate: keep the last of each run of equal guest times.
    std::vector<sync_sample> kept;
    kept.reserve(samples.size());
    for (std::size_t i = 0; i < samples.size(); ++i) {
      if (i + 1 < samples.size() && samples[i + 1].guest_time == samples[i].guest_time) continue;
      kept.push_back(samples[i]);
    }
    t.samples_ = std::move(kept);
    t.times_.reserve(t.samples_.size());
    for (const auto& s : t.samples_) t.times_.push_back(raw_ns(s.guest_time));
    t.build_host_index();
    t.build_kernels();
    return t;
  }
  /// Same, with the mode and policy spelled out.
  template <class = void>
  [[nodiscard]] static expected<sync_table, errc> make(std::vector<sync_sample> samples, correction_mode mode,
                                                       outside_policy outside) {
    return make(std::move(samples), table_options{mode, outside});
  }

  /// The de-duplicated samples, sorted by guest time.
  [[nodiscard]] std::span<const sync_sample> samples() const noexcept { return samples_; }
  /// Number of (de-duplicated) samples.
  [[nodiscard]] std::size_t size() const noexcept { return samples_.size(); }
  /// The table's options.
  [[nodiscard]] const table_options& options() const noexcept { return opt_; }
  /// True when host→guest (`to_guest`) is defined: the host time at the samples
  /// never decreases, so the guest→host map is monotone (non-decreasing).
  [[nodiscard]] bool invertible() const noexcept { return invertible_; }

  /// Guest → host, the reference: binary search for the region, then the exact
  /// formula. Errors: `errc::out_of_range` (outside the sampled range under
  /// `outside_policy::reject`), `errc::overflow` (host time outside int64).
  [[nodiscard]] expected<domain_time<host>, errc> correct(domain_time<guest> guest_time) const noexcept {
    const std::int64_t t = raw_ns(guest_time);
    auto h = correct_in_region(region_of(t), t);
    if (!h) return unexpected(h.error());
    return at_ns<host>(*h);
  }

  /// The offset (host − guest) that applies at `guest_time` in interpolate
  /// mode, or `host − guest` of the corrected time in step mode.
  [[nodiscard]] expected<guest_to_host, errc> offset_at(domain_time<guest> guest_time) const noexcept {
    const std::int64_t t = raw_ns(guest_time);
    auto h = eval_exact(region_of(t), t);
    if (!h) return unexpected(h.error());
    auto o = narrow_i64(*h - t);
    if (!o) return unexpected(errc::overflow);
    return guest_to_host(*o);
  }

  /// The uncertainty interval of the offset at `guest_time`, when the samples
  /// carry one: in interpolate mode between two samples the union of both
  /// intervals (`{min lo, max hi}`), elsewhere the nearest (step: applying)
  /// sample's interval. Empty when the relevant samples have none.
  [[nodiscard]] std::optional<offset_interval> bounds_at(domain_time<guest> guest_time) const noexcept {
    const std::size_t k = region_of(raw_ns(guest_time));
    const std::size_t n = samples_.size();
    if (k == 0) return samples_[0].bounds;
    if (k == n || opt_.mode == correction_mode::step) return samples_[k - 1].bounds;
    const auto& a = samples_[k - 1].bounds;
    const auto& b = samples_[k].bounds;
    if (!a || !b) return std::nullopt;
    return offset_interval{std::min(a->lo, b->lo), std::max(a->hi, b->hi)};
  }

  /// Host → guest: the smallest guest time `t` with `correct(t) >= host_time`
  /// (for a host time that some guest time maps to, the first such guest time;
  /// the map is monotone, so this is its Galois inverse), in both modes: in
  /// step mode `correct(to_guest(h)) >= h` and `correct(to_guest(h) − 1) < h`
  /// within the sampled range.
  /// Errors: `errc::ambiguous` when `!invertible()` (in step mode also when an
  /// offset that steps down makes the map fall between two samples); `errc::out_of_range` when
  /// no guest time maps at or after `host_time` or (reject policy) the host
  /// time is outside the sampled host range; `errc::overflow` when the result
  /// does not fit int64. When every guest time maps at or after `host_time`
  /// the answer is `INT64_MIN`.
  [[nodiscard]] expected<domain_time<guest>, errc> to_guest(domain_time<host> host_time) const noexcept {
    if (!invertible_) return unexpected(errc::ambiguous);
    const std::int64_t h = raw_ns(host_time);
    auto g = opt_.mode == correction_mode::step ? to_guest_step(h) : to_guest_interp(h);
    if (!g) return unexpected(g.error());
    return at_ns<guest>(*g);
  }

  // ---- region access for the streaming cursor and the batch path ----
  // (raw int64 guest times: the hot paths' representation)

  /// Number of regions: `size() + 1` (before the first sample, between each
  /// pair, after the last).
  [[nodiscard]] std::size_t regions() const noexcept { return kernels_.size(); }
  /// Region of a guest time: the number of samples whose time is `<= t`.
  [[nodiscard]] std::size_t region_of(std::int64_t t) const noexcept {
    return static_cast<std::size_t>(std::upper_bound(times_.begin(), times_.end(), t) - times_.begin());
  }
  /// First guest time of region `k`.
  [[nodiscard]] std::int64_t region_first(std::size_t k) const noexcept { return k == 0 ? min_time : times_[k - 1]; }
  /// Last guest time of region `k` (`first > last` for an empty region).
  [[nodiscard]] std::int64_t region_last(std::size_t k) const noexcept {
    if (k >= times_.size()) return max_time;
    // Region 0 is empty when the first sample is at INT64_MIN; region_of never returns it then.
    return times_[k] == min_time ? min_time : times_[k] - 1;
  }
  /// Precomputed fast-path parameters of region `k`.
  [[nodiscard]] const region_kernel& kernel(std::size_t k) const noexcept { return kernels_[k]; }
  /// The exact result for `t` in region `k` (precondition: `k == region_of(t)`).
  [[nodiscard]] expected<std::int64_t, errc> correct_in_region(std::size_t k, std::int64_t t) const noexcept {
    auto h = eval_exact(k, t);
    if (!h) return unexpected(h.error());
    auto v = narrow_i64(*h);
    if (!v) return unexpected(errc::overflow);
    return *v;
  }

 private:
  sync_table() = default;

  [[nodiscard]] static bool is_unscaled(const sync_sample& s) noexcept {
    return s.ratio == (std::uint64_t{1} << s.frac_bits);
  }
  [[nodiscard]] std::uint64_t seg_len(std::size_t i) const noexcept {
    return static_cast<std::uint64_t>(times_[i + 1]) - static_cast<std::uint64_t>(times_[i]);
  }
  [[nodiscard]] i128 seg_rise(std::size_t i) const noexcept {
    return static_cast<i128>(samples_[i + 1].offset.count()) - samples_[i].offset.count();
  }
  // Exact host time on the line of segment i (samples i, i+1), any t.
  [[nodiscard]] expected<i128, errc> line(std::size_t i, std::int64_t t) const noexcept {
    const auto f = floor_muldiv(seg_rise(i), static_cast<i128>(t) - times_[i], seg_len(i));
    if (!f) return unexpected(errc::overflow);
    return static_cast<i128>(t) + samples_[i].offset.count() + *f;
  }
  // Exact step (KVM inverse) host time with sample s.
  [[nodiscard]] i128 step_host(const sync_sample& s, std::int64_t t) const noexcept {
    const i128 sv = static_cast<i128>(t) + s.offset.count();
    if (is_unscaled(s)) return sv;
    return ceil_div(sv * (static_cast<i128>(1) << s.frac_bits), static_cast<i128>(s.ratio));
  }
  [[nodiscard]] expected<i128, errc> eval_exact(std::size_t k, std::int64_t t) const noexcept {
    const std::size_t n = samples_.size();
    const bool reject = opt_.outside == outside_policy::reject;
    const bool after_last = k == n && t != times_[n - 1];
    if ((k == 0 || after_last) && reject) return unexpected(errc::out_of_range);
    if (opt_.mode == correction_mode::step) return step_host(samples_[k == 0 ? 0 : k - 1], t);
    if (n == 1) return static_cast<i128>(t) + samples_[0].offset.count();
    if (k == 0) {
      if (opt_.outside == outside_policy::clamp) return static_cast<i128>(t) + samples_[0].offset.count();
      return line(0, t);
    }
    if (k == n) {
      if (!after_last || opt_.outside == outside_policy::clamp) return static_cast<i128>(t) + samples_[n - 1].offset.count();
      return line(n - 2, t);
    }
    return line(k - 1, t);
  }

  template <class = void>
  void build_host_index() {
    const std::size_t n = samples_.size();
    host_at_.resize(n);
    invertible_ = true;
    for (std::size_t i = 0; i < n; ++i) {
      host_at_[i] = opt_.mode == correction_mode::step ? step_host(samples_[i], times_[i])
                                                       : static_cast<i128>(times_[i]) + samples_[i].offset.count();
      if (i > 0 && host_at_[i] < host_at_[i - 1]) invertible_ = false;
      // Step mode: the last guest tick under the previous sample must not map
      // above this sample's first one (an offset that steps down makes the map
      // non-monotone between the samples although their own host times rise).
      if (i > 0 && opt_.mode == correction_mode::step && times_[i] > times_[i - 1] &&
          step_host(samples_[i - 1], times_[i] - 1) > host_at_[i])
        invertible_ = false;
    }
  }

  // A constant-offset kernel (host = t + o) over [lo, hi] ∩ {t : t + o fits int64}.
  static region_kernel const_kernel(std::int64_t o, i128 lo, i128 hi) noexcept {
    lo = std::max(lo, static_cast<i128>(min_time) - o);
    hi = std::min(hi, static_cast<i128>(max_time) - o);
    region_kernel k;
    if (lo > hi) return k;
    k.lo = static_cast<std::int64_t>(lo);
    k.hi = static_cast<std::int64_t>(hi);
    k.anchor = static_cast<std::uint64_t>(k.lo);  // slope 1: host = (lo + o) + (t − lo)
    k.hbase = static_cast<std::uint64_t>(k.lo) + static_cast<std::uint64_t>(o);
    return k;
  }
  // The line kernel of segment i over [lo, hi] (caller guarantees that every
  // exact result in [lo, hi] fits int64 and lo >= times_[i]).
  region_kernel line_kernel(std::size_t i, std::int64_t lo, std::int64_t hi) const noexcept {
    region_kernel k;
    const std::uint64_t den = seg_len(i);
    if (den > (std::uint64_t{1} << 63) || lo > hi) return k;
    const i128 slope = seg_rise(i) + static_cast<i128>(den);  // S: host rise over the segment
    i128 q = slope / static_cast<i128>(den);
    i128 r = slope % static_cast<i128>(den);
    if (r < 0) {
      r += static_cast<i128>(den);
      --q;
    }
    k.lo = lo;
    k.hi = hi;
    k.anchor = static_cast<std::uint64_t>(times_[i]);
    k.hbase = static_cast<std::uint64_t>(times_[i]) + static_cast<std::uint64_t>(samples_[i].offset.count());
    k.q = static_cast<std::uint64_t>(q);
    k.r = static_cast<std::uint64_t>(r);
    k.den = den;
    k.m = static_cast<std::uint64_t>((static_cast<u128>(k.r) << 64) / den);
    k.mc = k.r == 0 ? 0 : static_cast<std::uint64_t>(((static_cast<u128>(k.r) << 64) + (den - 1)) / den);
    const std::uint64_t xmax = static_cast<std::uint64_t>(hi) - k.anchor;
    k.short_form = (static_cast<u128>(xmax) * den) >> 64 == 0;
    return k;
  }
  [[nodiscard]] static bool fits(i128 v) noexcept { return narrow_i64(v).has_value(); }

  template <class = void>
  void build_kernels() {
    build_region_kernels();
    for (auto& k : kernels_) set_cursor_kernels(k);
  }

  // The cursor's kernels of one region (conditions and proofs in cursor.hpp
  // and docs/correction.md).
  static void set_cursor_kernels(region_kernel& kn) noexcept {
    if (kn.lo > kn.hi || kn.anchor != static_cast<std::uint64_t>(kn.lo) || kn.q > 1) return;
    constexpr std::uint64_t half = std::uint64_t{1} << 63;
    const std::uint64_t xmax = static_cast<std::uint64_t>(kn.hi) - static_cast<std::uint64_t>(kn.lo);
    const std::uint64_t len = xmax == ~std::uint64_t{0} ? xmax : xmax + 1;  // x < len <=> lo <= t <= hi (but INT64_MAX of a full range)
    const i128 sigma = static_cast<i128>(kn.r) - (kn.q == 0 ? static_cast<i128>(kn.den) : 0);  // in [−den, den)
    if (sigma == 0) {  // slope exactly 1: host = hbase + x
      kn.len64 = len;
      return;
    }
    const u128 reach = static_cast<u128>(xmax) * kn.den;
    const auto reach_hi = static_cast<std::uint64_t>(reach >> 64);
    const unsigned sh = reach_hi != 0 ? 64u + static_cast<unsigned>(std::bit_width(reach_hi))
                                      : static_cast<unsigned>(std::bit_width(static_cast<std::uint64_t>(reach)));
    if (sh <= 62) {
      const auto m = ceil_muldiv(sigma, static_cast<i128>(std::uint64_t{1} << sh), kn.den);
      if (m) {
        const u128 mag = static_cast<u128>(*m < 0 ? -*m : *m);
        if (mag < half && mag * xmax < half) {  // |m * x| < 2^63 for every x in range
          kn.len64 = len;
          kn.m64 = static_cast<std::uint64_t>(static_cast<std::int64_t>(*m));
          kn.sh64 = sh;
          return;
        }
      }
    }
    // Short form with S = 1 + s / 2^64, s an int64: q = 1 and mc < 2^63, or
    // q = 0 and mc >= 2^63 (and x < 2^63 for the signed product)
    const bool near_one = (kn.q == 1 && kn.mc < half) || (kn.q == 0 && kn.mc >= half);
    if (kn.short_form && near_one && xmax < half) {
      kn.len128 = len;  // s = int64(mc): two's complement, mc − 2^64 when q = 0
      return;
    }
    // Full form (long segments): the same with m and the carry test
    const bool near_one_m = (kn.q == 1 && kn.m < half) || (kn.q == 0 && kn.m >= half);
    if (near_one_m && xmax < half) {
      kn.len_long = len;  // s = int64(m): m − 2^64 when q = 0
    }
  }

  template <class = void>
  void build_region_kernels() {
    const std::size_t n = samples_.size();
    kernels_.assign(n + 1, region_kernel{});
    const bool reject = opt_.outside == outside_policy::reject;
    if (opt_.mode == correction_mode::step) {
      for (std::size_t k = 0; k <= n; ++k) {
        const sync_sample& s = samples_[k == 0 ? 0 : k - 1];
        if (!is_unscaled(s)) continue;  // scaled: exact division on every path
        i128 lo = region_first(k);
        i128 hi = region_last(k);
        if (reject && k == 0) continue;
        if (reject && k == n) hi = lo;
        if (k == 0 && times_[0] == min_time) continue;
        kernels_[k] = const_kernel(s.offset.count(), lo, hi);
      }
      return;
    }
    // Interpolate mode.
    if (times_[0] != min_time && !reject) {
      if (n == 1 || opt_.outside == outside_policy::clamp)
        kernels_[0] = const_kernel(samples_[0].offset.count(), min_time, static_cast<i128>(times_[0]) - 1);
      // extrapolating before the first sample: exact path (x would be negative)
    }
    for (std::size_t i = 0; i + 1 < n; ++i) {
      if (fits(host_at_[i]) && fits(host_at_[i + 1]))
        kernels_[i + 1] = line_kernel(i, times_[i], times_[i + 1] - 1);
    }
    const std::int64_t last = times_[n - 1];
    if (reject) {
      kernels_[n] = const_kernel(samples_[n - 1].offset.count(), last, last);
    } else if (n == 1 || opt_.outside == outside_policy::clamp) {
      kernels_[n] = const_kernel(samples_[n - 1].offset.count(), last, max_time);
    } else if (fits(host_at_[n - 1])) {
      // Extrapolate after the last sample along segment n-2. The exact host is
      // monotone in t along the line, so the times whose host fits int64 form
      // an interval starting at `last`: find its end by bisection.
      auto ok = [&](std::int64_t t) {
        auto h = line(n - 2, t);
        return h && fits(*h);
      };
      std::int64_t good = last;
      std::int64_t bad = max_time;
      if (ok(max_time)) {
        good = max_time;
      } else {
        while (static_cast<std::uint64_t>(bad) - static_cast<std::uint64_t>(good) > 1) {
          const std::int64_t mid = static_cast<std::int64_t>(
              static_cast<i128>(good) + (static_cast<i128>(bad) - good) / 2);
          (ok(mid) ? good : bad) = mid;
        }
      }
      kernels_[n] = line_kernel(n - 2, last, good);
    }
  }

  // Smallest integer x with floor(s * x / den) >= y (s > 0), as the guest time
  // anchor + x, clamped below to INT64_MIN; out_of_range when above INT64_MAX.
  [[nodiscard]] static expected<std::int64_t, errc> solve(i128 s, std::uint64_t den, i128 y,
                                                         std::int64_t anchor) noexcept {
    const i128 xmin = static_cast<i128>(min_time) - anchor;
    const i128 xmax = static_cast<i128>(max_time) - anchor;
    if (s <= 0) {  // flat line: every x qualifies when y <= 0, none otherwise
      if (y <= 0) return min_time;
      return unexpected(errc::out_of_range);
    }
    i128 x{};
    if (s < (static_cast<i128>(1) << 64)) {
      const auto c = ceil_muldiv(y, static_cast<i128>(den), static_cast<std::uint64_t>(s));
      if (!c) {
        if (y > 0) return unexpected(errc::out_of_range);
        return min_time;
      }
      x = *c;
    } else {
      auto pred = [&](i128 v) {
        const auto f = floor_muldiv(s, v, den);
        if (!f) return v > 0;
        return *f >= y;
      };
      if (!pred(xmax)) return unexpected(errc::out_of_range);
      if (pred(xmin)) return min_time;
      i128 lo = xmin;  // pred false
      i128 hi = xmax;  // pred true
      while (hi - lo > 1) {
        const i128 mid = lo + (hi - lo) / 2;
        (pred(mid) ? hi : lo) = mid;
      }
      x = hi;
    }
    if (x > xmax) return unexpected(errc::out_of_range);
    if (x < xmin) return min_time;
    return static_cast<std::int64_t>(static_cast<i128>(anchor) + x);
  }

  [[nodiscard]] expected<std::int64_t, errc> to_guest_interp(std::int64_t h) const noexcept {
    const std::size_t n = samples_.size();
    const i128 hv = h;
    const std::size_t k =
        static_cast<std::size_t>(std::lower_bound(host_at_.begin(), host_at_.end(), hv) - host_at_.begin());
    const bool reject = opt_.outside == outside_policy::reject;
    if (k == 0) {  // h <= host at the first sample
      if (reject) {
        if (hv == host_at_[0]) return times_[0];
        return unexpected(errc::out_of_range);
      }
      if (n == 1 || opt_.outside == outside_policy::clamp) {
        const i128 t = hv - samples_[0].offset.count();
        if (t < min_time) return min_time;
        return static_cast<std::int64_t>(t);
      }
      // extrapolate along segment 0; the answer is <= times_[0]
      auto t = solve(host_at_[1] - host_at_[0], seg_len(0), hv - host_at_[0], times_[0]);
      return t;
    }
    if (k == n) {  // h > host at the last sample
      if (reject) return unexpected(errc::out_of_range);
      if (n == 1 || opt_.outside == outside_policy::clamp) {
        const i128 t = hv - samples_[n - 1].offset.count();
        if (t > max_time) return unexpected(errc::out_of_range);
        return static_cast<std::int64_t>(t);
      }
      return solve(host_at_[n - 1] - host_at_[n - 2], seg_len(n - 2), hv - host_at_[n - 2], times_[n - 2]);
    }
    // host_at_[k-1] < h <= host_at_[k]: inside segment k-1 (a rising segment).
    return solve(host_at_[k] - host_at_[k - 1], seg_len(k - 1), hv - host_at_[k - 1], times_[k - 1]);
  }

  // The smallest guest time t with step_host(s, t) >= h:
  // ceil((t + o)·2^f / r) >= h  <=>  t + o >= floor((h − 1)·r / 2^f) + 1.
  [[nodiscard]] static i128 step_inverse(const sync_sample& s, std::int64_t h) noexcept {
    if (s.ratio == (std::uint64_t{1} << s.frac_bits)) return static_cast<i128>(h) - s.offset.count();
    return floor_div((static_cast<i128>(h) - 1) * static_cast<i128>(s.ratio), static_cast<i128>(1) << s.frac_bits) + 1 -
           s.offset.count();
  }

  // The Galois inverse of the (monotone) step map: the first sample k whose host
  // time reaches h; the answer lies in the segment before it, or is times_[k].
  [[nodiscard]] expected<std::int64_t, errc> to_guest_step(std::int64_t h) const noexcept {
    const std::size_t n = samples_.size();
    const i128 hv = h;
    const std::size_t k =
        static_cast<std::size_t>(std::lower_bound(host_at_.begin(), host_at_.end(), hv) - host_at_.begin());
    const bool reject = opt_.outside == outside_policy::reject;
    i128 g = step_inverse(samples_[k == 0 ? 0 : k - 1], h);
    if (k > 0 && k < n && g > times_[k]) g = times_[k];
    if (reject && (g < times_[0] || g > times_[n - 1])) return unexpected(errc::out_of_range);
    auto v = narrow_i64(g);
    if (!v) return unexpected(errc::overflow);
    return *v;
  }

  table_options opt_{};
  bool invertible_ = true;
  std::vector<sync_sample> samples_;
  std::vector<std::int64_t> times_;
  std::vector<i128> host_at_;
  std::vector<region_kernel> kernels_;
};

}  // namespace tsync::correct
