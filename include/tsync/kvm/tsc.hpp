#pragma once
/// \file
/// KVM TSC arithmetic, exactly as the kernel and the hardware do it.
///
/// Forward (host → guest), what KVM programs and the CPU computes:
///
///     guest_tsc = ( floor(host_tsc * ratio / 2^frac_bits) mod 2^64 + offset ) mod 2^64
///
/// Inverse (guest → host), the smallest host tick whose scaled value reaches
/// `S = (guest_tsc − offset) mod 2^64`:
///
///     host_tsc = ceil(S * 2^frac_bits / ratio)
///
/// Round-trip guarantee: `to_guest(to_host(g)) == g` for every g that the
/// forward map can produce. When the guest TSC runs at least as fast as the
/// host (`ratio >= 2^frac_bits`) the inverse is exact: `to_host(to_guest(h)) == h`.
/// When the guest is slower, several host ticks share one guest value and
/// `to_host` returns the first of them: `0 <= h − to_host(to_guest(h)) <= ceil(2^frac_bits / ratio) − 1`.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/time.hpp"

namespace tsync::kvm {

/// Vendor fixed-point formats of the TSC scaling ratio.
struct vendor_format {
  std::uint8_t frac_bits;      ///< fraction bits of the ratio
  std::uint64_t max_ratio;     ///< largest ratio KVM accepts (kvm_caps.max_tsc_scaling_ratio)
  [[nodiscard]] constexpr std::uint64_t default_ratio() const noexcept { return std::uint64_t{1} << frac_bits; }
};
/// Intel VMX: 16.48 fixed point, maximum 0xffffffffffffffff.
inline constexpr vendor_format intel{48, 0xffffffffffffffffULL};
/// AMD SVM: 8.32 fixed point (TSC_RATIO MSR), maximum 0x000000ffffffffff.
inline constexpr vendor_format amd{32, 0x000000ffffffffffULL};

/// One vCPU's TSC parameters as KVM holds them.
///
/// `offset` is KVM's `tsc-offset` reinterpreted as an unsigned 64-bit value
/// (debugfs prints it signed; arithmetic is modulo 2^64). It is in guest ticks
/// and is added after scaling.
struct tsc_params {
  std::uint64_t offset = 0;   ///< guest − scaled host, modulo 2^64
  std::uint64_t ratio = 1;    ///< scaling ratio, fixed point with `frac_bits` fraction bits
  std::uint8_t frac_bits = 0; ///< 48 (Intel), 32 (AMD), or any value <= 63 for unscaled

  /// Unscaled parameters (ratio 1.0 in the given format).
  [[nodiscard]] static constexpr tsc_params unscaled(std::int64_t kvm_offset, std::uint8_t frac = 0) noexcept {
    return {static_cast<std::uint64_t>(kvm_offset), std::uint64_t{1} << frac, frac};
  }
  /// True when the ratio is exactly 1.0.
  [[nodiscard]] constexpr bool is_unscaled() const noexcept {
    return frac_bits <= 63 && ratio == (std::uint64_t{1} << frac_bits);
  }
  /// The offset as debugfs prints it (signed).
  [[nodiscard]] constexpr std::int64_t signed_offset() const noexcept { return static_cast<std::int64_t>(offset); }
  friend constexpr bool operator==(const tsc_params&, const tsc_params&) = default;
};

/// Check the parameters: ratio 0 → `errc::zero_ratio`; frac_bits > 63 →
/// `errc::bad_frac_bits`; ratio above `max_ratio` → `errc::ratio_above_max`.
/// `max_ratio` defaults to no limit beyond 2^64−1; pass `intel.max_ratio` or
/// `amd.max_ratio` to apply a vendor's.
[[nodiscard]] constexpr errc validate(const tsc_params& p,
                                      std::uint64_t max_ratio = 0xffffffffffffffffULL) noexcept {
  if (p.frac_bits > 63) return errc::bad_frac_bits;
  if (p.ratio == 0) return errc::zero_ratio;
  if (p.ratio > max_ratio) return errc::ratio_above_max;
  return errc::ok;
}
/// Validate against a vendor format: frac_bits must match it, ratio within its maximum.
[[nodiscard]] constexpr errc validate(const tsc_params& p, const vendor_format& v) noexcept {
  if (p.frac_bits != v.frac_bits) return p.frac_bits > 63 ? errc::bad_frac_bits : errc::invalid_argument;
  return validate(p, v.max_ratio);
}

/// Host TSC → guest TSC, exactly the kernel's `kvm_read_l1_tsc`:
/// `((host * ratio) >> frac_bits) + offset`, all modulo 2^64.
/// Precondition: `validate(p) == errc::ok`.
[[nodiscard]] constexpr std::uint64_t to_guest(std::uint64_t host_tsc, const tsc_params& p) noexcept {
  if (p.is_unscaled()) return host_tsc + p.offset;
  return mul_u64_u64_shr(host_tsc, p.ratio, p.frac_bits) + p.offset;
}

/// Guest TSC → host TSC: the exact inverse `ceil(((g − offset) mod 2^64) * 2^frac / ratio)`,
/// computed with 128-bit intermediates. Returns `errc::overflow` when the result
/// exceeds 2^64 − 1 (possible only when the guest is slower than the host and the
/// offset belongs to another epoch). Precondition: `validate(p) == errc::ok`.
[[nodiscard]] constexpr expected<std::uint64_t, errc> to_host(std::uint64_t guest_tsc, const tsc_params& p) noexcept {
  const std::uint64_t s = guest_tsc - p.offset;
  if (p.is_unscaled()) return s;
  const u128 num = (static_cast<u128>(s) << p.frac_bits) + (p.ratio - 1);
  const u128 q = num / p.ratio;
  if (q >> 64) return unexpected(errc::overflow);
  return static_cast<std::uint64_t>(q);
}

/// The largest host tick that maps to `guest_tsc` (the end of its preimage
/// bucket): `ceil((S + 1) * 2^frac / ratio) − 1`. With `to_host` it brackets the
/// true host time of a genuine guest stamp. `errc::overflow` when out of range.
[[nodiscard]] constexpr expected<std::uint64_t, errc> to_host_last(std::uint64_t guest_tsc, const tsc_params& p) noexcept {
  const std::uint64_t s = guest_tsc - p.offset;
  if (p.is_unscaled()) return s;
  const u128 num = ((static_cast<u128>(s) + 1) << p.frac_bits) + (p.ratio - 1);
  const u128 q = num / p.ratio - 1;
  if (q >> 64) return unexpected(errc::overflow);
  return static_cast<std::uint64_t>(q);
}

/// Worst-case distance `ceil(2^frac / ratio) − 1` between a true host tick and
/// `to_host(to_guest(h))` (0 when the guest is at least as fast as the host).
[[nodiscard]] constexpr std::uint64_t inverse_error_bound(const tsc_params& p) noexcept {
  const u128 f = static_cast<u128>(1) << p.frac_bits;
  const u128 c = (f + p.ratio - 1) / p.ratio;
  return static_cast<std::uint64_t>(c - 1);
}


// ---------------------------------------------------------------------------
// Typed overloads: the domain is part of the type.
// ---------------------------------------------------------------------------

/// Typed host → guest (see the raw overload).
[[nodiscard]] constexpr ticks<guest> to_guest(ticks<host> h, const tsc_params& p) noexcept {
  return ticks<guest>(to_guest(h.count(), p));
}
/// Typed guest → host (see the raw overload).
[[nodiscard]] constexpr expected<ticks<host>, errc> to_host(ticks<guest> g, const tsc_params& p) noexcept {
  auto r = to_host(g.count(), p);
  if (!r) return unexpected(r.error());
  return ticks<host>(*r);
}

// ---------------------------------------------------------------------------
// Nested virtualization (L0 host, L1 guest, L2 = L1's guest).
// ---------------------------------------------------------------------------

/// The combined L0 → L2 parameters, computed exactly as KVM computes the values
/// it programs into the hardware for a nested guest
/// (`kvm_calc_nested_tsc_multiplier` / `kvm_calc_nested_tsc_offset`):
///
///     m02 = (m01 * m12) >> f            if m12 != 2^f, else m01
///     o02 = smag((o01 * m12) >> f) + o12 if m12 != 2^f, else o01 + o12
///
/// where `smag` is the kernel's sign-magnitude `mul_s64_u64_shr` (rounds toward
/// zero, T15) and every result is truncated to 64 bits as in the kernel.
///
/// `l1` holds L1's parameters relative to the host, `l2` the parameters L1
/// programs for its own guest (vmcs12 / nested VMCB). Because `m02` is
/// truncated, `to_guest(h, compose_nested(l1, l2))` (what the hardware produces)
/// can differ from the literal two-step `to_guest(to_guest(h, l1), l2)` by about
/// `h / 2^f` ticks (T14: 95 ticks after 108 days); convert L2 stamps with the
/// composed values.
///
/// Errors: either input invalid (`validate`); `errc::invalid_argument` when the
/// two levels use different `frac_bits` (KVM has one format per host);
/// `errc::zero_ratio` when the combined multiplier truncates to 0 (no usable
/// conversion exists).
[[nodiscard]] constexpr expected<tsc_params, errc> compose_nested(const tsc_params& l1, const tsc_params& l2) noexcept {
  if (auto e = validate(l1); e != errc::ok) return unexpected(e);
  if (auto e = validate(l2); e != errc::ok) return unexpected(e);
  if (l1.frac_bits != l2.frac_bits) return unexpected(errc::invalid_argument);
  const unsigned f = l1.frac_bits;
  const std::uint64_t dflt = std::uint64_t{1} << f;
  tsc_params out{};
  out.frac_bits = l1.frac_bits;
  if (l2.ratio == dflt) {
    out.ratio = l1.ratio;
    out.offset = l1.offset + l2.offset;
  } else {
    out.ratio = mul_u64_u64_shr(l1.ratio, l2.ratio, f);
    out.offset = mul_s64_u64_shr(static_cast<std::int64_t>(l1.offset), l2.ratio, f) + l2.offset;
  }
  if (out.ratio == 0) return unexpected(errc::zero_ratio);
  return out;
}

// ---------------------------------------------------------------------------
// Precomputed exact inverse (no 128-bit division per value).
// ---------------------------------------------------------------------------

namespace detail {
// One step of Möller–Granlund division (udiv_qrnnd_preinv) followed by the
// ceiling: ceil((u1*2^64 + u0) / d) for a normalised d (top bit set),
// v = floor((2^128 - 1) / d) - 2^64 and u1 < d. Branch-free.
[[nodiscard]] constexpr std::uint64_t mg_ceil(std::uint64_t u1, std::uint64_t u0, std::uint64_t v,
                                              std::uint64_t d) noexcept {
  u128 q = static_cast<u128>(v) * u1;
  q += (static_cast<u128>(u1) << 64) | u0;
  std::uint64_t q1 = static_cast<std::uint64_t>(q >> 64) + 1;
  const std::uint64_t q0 = static_cast<std::uint64_t>(q);
  std::uint64_t r = u0 - q1 * d;
  // Masks rather than branches, so that compilers emit conditional moves.
  const std::uint64_t m1 = 0 - static_cast<std::uint64_t>(r > q0);
  q1 += m1;  // q1 - 1 when r > q0
  r += d & m1;
  const std::uint64_t m2 = 0 - static_cast<std::uint64_t>(r >= d);
  q1 -= m2;  // q1 + 1 when r >= d
  r -= d & m2;
  return q1 + static_cast<std::uint64_t>(r != 0);  // r is the remainder << l: round up
}
}  // namespace detail

/// Why a batch conversion stopped.
struct batch_error {
  errc code = errc::ok;   ///< `overflow`, `invalid_argument` (span sizes) or a `validate` error
  std::size_t index = 0;  ///< index of the first value that failed (0 for argument errors)
  friend constexpr bool operator==(const batch_error&, const batch_error&) = default;
};

/// A precomputed form of `to_host` for one parameter set.
///
/// `to_host` needs `ceil(N / ratio)` with `N = S * 2^frac_bits` up to 127 bits.
/// The plan normalises the divisor (`d = ratio << l`, top bit set) and keeps
/// the reciprocal `v = floor((2^128 − 1) / d) − 2^64`; each conversion is then
/// one 64×64→128 multiply, one 64×64 low multiply and two branch-free
/// correction steps (Möller and Granlund, "Improved division by invariant
/// integers", 2011), which give the exact floor quotient and remainder; the
/// ceiling adds 1 when the remainder is not 0. Overflow is one comparison of S
/// with the largest S whose result fits (the map is monotone). The result is
/// bit-identical to the scalar `to_host` for every input (property-tested over
/// the full 64-bit ranges and at the edges).
class inverse_plan {
 public:
  /// Build the plan; fails as `validate(p)` does.
  [[nodiscard]] static constexpr expected<inverse_plan, errc> make(const tsc_params& p) noexcept {
    if (auto e = validate(p); e != errc::ok) return unexpected(e);
    inverse_plan k;
    k.offset_ = p.offset;
    k.frac_ = p.frac_bits;
    k.ratio_ = p.ratio;
    k.unscaled_ = p.is_unscaled();
    const unsigned l = static_cast<unsigned>(std::countl_zero(p.ratio));
    k.d_ = p.ratio << l;
    // floor((2^128 - 1) / d) - 2^64  ==  floor((~d * 2^64 + 2^64 - 1) / d)
    const u128 num = (static_cast<u128>(~k.d_) << 64) | ~std::uint64_t{0};
    k.v_ = static_cast<std::uint64_t>(num / k.d_);
    k.shift_ = p.frac_bits + l;  // u = S << shift_, at most 126
    // Largest S with ceil(S * 2^f / r) <= 2^64 - 1: floor((2^64 - 1) * r / 2^f).
    const u128 smax = (static_cast<u128>(~std::uint64_t{0}) * p.ratio) >> p.frac_bits;
    k.s_max_ = (smax >> 64) ? ~std::uint64_t{0} : static_cast<std::uint64_t>(smax);
    return k;
  }

  /// The parameters this plan inverts.
  [[nodiscard]] constexpr tsc_params params() const noexcept { return {offset_, ratio_, frac_}; }
  /// True for the unscaled fast path (`host = guest − offset`).
  [[nodiscard]] constexpr bool unscaled() const noexcept { return unscaled_; }
  /// The largest `S = guest − offset` (mod 2^64) whose host value fits 64 bits.
  [[nodiscard]] constexpr std::uint64_t max_scaled() const noexcept { return unscaled_ ? ~std::uint64_t{0} : s_max_; }

  /// Checked conversion: the same value as `to_host(guest_tsc, params())`.
  [[nodiscard]] constexpr expected<std::uint64_t, errc> operator()(std::uint64_t guest_tsc) const noexcept {
    const std::uint64_t s = guest_tsc - offset_;
    if (unscaled_) return s;
    if (s > s_max_) return unexpected(errc::overflow);
    return scaled(s);
  }

  /// `ceil((s << frac) / ratio)` for a scaled plan. Precondition: `s <= max_scaled()`.
  [[nodiscard]] constexpr std::uint64_t scaled(std::uint64_t s) const noexcept {
    if (shift_ >= 64) return detail::mg_ceil(s << (shift_ - 64), 0, v_, d_);
    return detail::mg_ceil((s >> 1) >> (63 - shift_), s << shift_, v_, d_);
  }

 private:
  friend expected<void, batch_error> to_host_batch_impl(const std::uint64_t*, std::uint64_t*, std::size_t,
                                                               const inverse_plan&) noexcept;
  constexpr inverse_plan() noexcept = default;
  std::uint64_t offset_ = 0;
  std::uint64_t ratio_ = 1;
  std::uint64_t d_ = 0;      // ratio << l (normalised divisor)
  std::uint64_t v_ = 0;      // reciprocal of d_
  std::uint64_t s_max_ = 0;  // largest S with a 64-bit result
  unsigned shift_ = 0;       // frac + l
  std::uint8_t frac_ = 0;
  bool unscaled_ = true;
};

// ---------------------------------------------------------------------------
// Batch conversions.
// ---------------------------------------------------------------------------

namespace detail {
inline constexpr std::size_t kvm_batch_block = 512;

// out[i] = in[i] + o; in and out may be the same range.
inline void add_offset(const std::uint64_t* in, std::uint64_t* out, std::size_t n, std::uint64_t o) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i] + o;
}
inline void scale_add(const std::uint64_t* in, std::uint64_t* out, std::size_t n, std::uint64_t r,
                      unsigned f, std::uint64_t o) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = mul_u64_u64_shr(in[i], r, f) + o;
}
}  // namespace detail

/// The batch kernel behind `to_host(span, span, plan)`; `in` and `out` may be equal.
inline expected<void, batch_error> to_host_batch_impl(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                      const inverse_plan& plan) noexcept {
  // Locals: the compiler need not reload them after each store to `out`.
  const std::uint64_t o = plan.offset_, v = plan.v_, d = plan.d_, smax = plan.s_max_;
  const unsigned sh = plan.shift_;
  if (plan.unscaled_) {
    detail::add_offset(in, out, n, 0 - o);
    return {};
  }
  for (std::size_t base = 0; base < n; base += detail::kvm_batch_block) {
    const std::size_t end = std::min(n, base + detail::kvm_batch_block);
    // Overflow pre-check on the untouched inputs (vectorisable), so that the
    // conversion loop has no checks and the first failing index is exact even in place.
    std::uint64_t bad = 0;
    for (std::size_t i = base; i < end; ++i) bad |= static_cast<std::uint64_t>(in[i] - o > smax);
    std::size_t stop = end;
    if (bad != 0) {
      stop = base;
      while (in[stop] - o <= smax) ++stop;
    }
    if (sh >= 64) {
      const unsigned a = sh - 64;
      for (std::size_t i = base; i < stop; ++i) out[i] = detail::mg_ceil((in[i] - o) << a, 0, v, d);
    } else {
      const unsigned b = 63 - sh;
      for (std::size_t i = base; i < stop; ++i) {
        const std::uint64_t s = in[i] - o;
        out[i] = detail::mg_ceil((s >> 1) >> b, s << sh, v, d);
      }
    }
    if (stop != end) return unexpected(batch_error{errc::overflow, stop});
  }
  return {};
}

/// Host → guest for a whole range: `out[i] = to_guest(in[i], p)`, bit for bit.
/// Errors: `errc::invalid_argument` (index 0) when `out.size() != in.size()`,
/// or the `validate(p)` error. `in` and `out` may be the same range, but must
/// not otherwise overlap.
[[nodiscard]] inline expected<void, batch_error> to_guest(std::span<const std::uint64_t> in,
                                                         std::span<std::uint64_t> out,
                                                         const tsc_params& p) noexcept {
  if (auto e = validate(p); e != errc::ok) return unexpected(batch_error{e, 0});
  if (in.size() != out.size()) return unexpected(batch_error{errc::invalid_argument, 0});
  if (p.is_unscaled()) detail::add_offset(in.data(), out.data(), in.size(), p.offset);
  else detail::scale_add(in.data(), out.data(), in.size(), p.ratio, p.frac_bits, p.offset);
  return {};
}
/// In-place host → guest.
[[nodiscard]] inline expected<void, batch_error> to_guest(std::span<std::uint64_t> inout, const tsc_params& p) noexcept {
  return to_guest(std::span<const std::uint64_t>(inout.data(), inout.size()), inout, p);
}

/// Guest → host for a whole range with a prepared plan (see `inverse_plan`):
/// `out[i] == *to_host(in[i], plan.params())`, bit for bit.
/// On `errc::overflow` the error holds the index of the first value whose
/// exact result does not fit 64 bits; `out` is then final before that index
/// and unspecified from it on. `in` and `out` may be the same range, but must
/// not otherwise overlap.
[[nodiscard]] inline expected<void, batch_error> to_host(std::span<const std::uint64_t> in,
                                                        std::span<std::uint64_t> out,
                                                        const inverse_plan& plan) noexcept {
  if (in.size() != out.size()) return unexpected(batch_error{errc::invalid_argument, 0});
  return to_host_batch_impl(in.data(), out.data(), in.size(), plan);
}

/// Guest → host for a whole range (builds an `inverse_plan` once).
[[nodiscard]] inline expected<void, batch_error> to_host(std::span<const std::uint64_t> in,
                                                        std::span<std::uint64_t> out,
                                                        const tsc_params& p) noexcept {
  auto plan = inverse_plan::make(p);
  if (!plan) return unexpected(batch_error{plan.error(), 0});
  return to_host(in, out, *plan);
}
/// In-place guest → host.
[[nodiscard]] inline expected<void, batch_error> to_host(std::span<std::uint64_t> inout, const tsc_params& p) noexcept {
  return to_host(std::span<const std::uint64_t>(inout.data(), inout.size()), inout, p);
}

}  // namespace tsync::kvm
