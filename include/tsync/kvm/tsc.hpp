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

#include <cstdint>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/time.hpp"
#include "tsync/core/config.hpp"


namespace tsync::inline TSYNC_ABI::kvm {

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
[[nodiscard]] constexpr expected<void, errc> validate(const tsc_params& p,
                                                     std::uint64_t max_ratio = 0xffffffffffffffffULL) noexcept {
  if (p.frac_bits > 63) return unexpected(errc::bad_frac_bits);
  if (p.ratio == 0) return unexpected(errc::zero_ratio);
  if (p.ratio > max_ratio) return unexpected(errc::ratio_above_max);
  return {};
}
/// Validate against a vendor format: frac_bits must match it, ratio within its maximum.
[[nodiscard]] constexpr expected<void, errc> validate(const tsc_params& p, const vendor_format& v) noexcept {
  if (p.frac_bits != v.frac_bits) return unexpected(p.frac_bits > 63 ? errc::bad_frac_bits : errc::invalid_argument);
  return validate(p, v.max_ratio);
}

/// Host TSC → guest TSC, exactly the kernel's `kvm_read_l1_tsc`:
/// `((host * ratio) >> frac_bits) + offset`, all modulo 2^64.
/// Precondition: `validate(p)` holds.
[[nodiscard]] constexpr std::uint64_t to_guest(std::uint64_t host_tsc, const tsc_params& p) noexcept {
  if (p.is_unscaled()) return host_tsc + p.offset;
  return mul_u64_u64_shr(host_tsc, p.ratio, p.frac_bits) + p.offset;
}

/// Guest TSC → host TSC: the exact inverse `ceil(((g − offset) mod 2^64) * 2^frac / ratio)`,
/// computed with 128-bit intermediates. Returns `errc::overflow` when the result
/// exceeds 2^64 − 1 (possible only when the guest is slower than the host and the
/// offset belongs to another epoch). Precondition: `validate(p)` holds.
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
  if (auto v = validate(l1); !v) return unexpected(v.error());
  if (auto v = validate(l2); !v) return unexpected(v.error());
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

/// Deprecated (one release): the batch conversions return `tsync::index_error`
/// (`code` is `overflow`, `invalid_argument` for span sizes or a `validate`
/// error, `index` the first value that failed, 0 for argument errors).
using batch_error [[deprecated("use tsync::index_error")]] = index_error;

namespace detail {
// The constants of an `inverse_plan`, as the batch kernels read them.
struct inverse_constants {
  std::uint64_t offset = 0;
  std::uint64_t ratio = 1;
  std::uint64_t mi = 0;     // floor(2^f / r): high word of the reciprocal m
  std::uint64_t mf = 0;     // low word of m = floor(2^(64+f) / r)
  std::uint64_t s_max = 0;  // largest S with a 64-bit result
  unsigned frac = 0;
  bool unscaled = true;
};
struct inverse_access;
}  // namespace detail

/// A precomputed form of `to_host` for one parameter set.
///
/// `to_host` needs `q = ceil(S * 2^f / r)` for `S = (g − offset) mod 2^64`.
/// With `c = 2^f / r` the plan keeps the 128-bit reciprocal
///
///     m = floor(2^(64+f) / r) = mi * 2^64 + mf        (mi = floor(c), mf < 2^64)
///
/// and one conversion is
///
///     e = S * mi + floor(S * mf / 2^64)     (= floor(S * m / 2^64), exact)
///     R = S * 2^f − e * r                    (exact remainder of the estimate)
///     q = e + [R > 0] + [R > r]
///
/// Proof that this is the exact ceiling. Let `q0 = floor(S * c)`. Because
/// `0 <= 2^(64+f)/r − m < 1`, the estimate satisfies
/// `S*c − 1 < S*c − S/2^64 < S*m/2^64 <= S*c` (as `S < 2^64`), so
/// `e = floor(S*m/2^64)` is `q0 − 1` or `q0`. Hence `R = S*2^f − e*r` lies in
/// `[0, 2r)`: it is `q0`'s remainder (in `[0, r)`) or that plus `r`. The
/// smallest `q` with `q*r >= S*2^f` is then `e` when `R = 0`, `e + 1` when
/// `0 < R <= r` and `e + 2` when `r < R < 2r`, which is the formula for `q`.
/// When `r <= 2^63`, `2r − 1 < 2^64`, so `R` is exactly its low 64 bits
/// `(S << f) − e*r mod 2^64`: the whole conversion is one 64×64→128 multiply
/// (plus one low multiply when `mi > 1`), one low multiply, a shift, a
/// subtraction and two comparisons, all modulo 2^64. For `r > 2^63` (a guest
/// more than 2^(63−f) times faster than the host) `R` is formed in 128 bits.
/// Every intermediate stays below 2^64 for a valid `S`, because `e <= q0 <= q`
/// and `q` fits.
///
/// Overflow is one comparison of S with the largest S whose result fits (the
/// map is monotone). The batch `to_host` uses an AVX-512 kernel of the same
/// formula when the CPU has AVX-512F and AVX-512DQ (checked once at run time;
/// the kernel is compiled for x86-64 with GCC or clang whatever the `-m`
/// flags) and `r <= 2^63`; otherwise a portable one. All paths are bit-identical to the scalar `to_host` for every
/// input (property-tested over the full 64-bit ranges and at the edges).
class inverse_plan {
 public:
  /// Build the plan; fails as `validate(p)` does.
  [[nodiscard]] static constexpr expected<inverse_plan, errc> make(const tsc_params& p) noexcept {
    if (auto v = validate(p); !v) return unexpected(v.error());
    inverse_plan plan;
    detail::inverse_constants& k = plan.k_;
    k.offset = p.offset;
    k.frac = p.frac_bits;
    k.ratio = p.ratio;
    k.unscaled = p.is_unscaled();
    const u128 m = (static_cast<u128>(1) << (64 + p.frac_bits)) / p.ratio;  // 2^(64+f) <= 2^127
    k.mi = static_cast<std::uint64_t>(m >> 64);
    k.mf = static_cast<std::uint64_t>(m);
    // Largest S with ceil(S * 2^f / r) <= 2^64 - 1: floor((2^64 - 1) * r / 2^f).
    const u128 smax = (static_cast<u128>(~std::uint64_t{0}) * p.ratio) >> p.frac_bits;
    k.s_max = (smax >> 64) ? ~std::uint64_t{0} : static_cast<std::uint64_t>(smax);
    return plan;
  }

  /// The parameters this plan inverts.
  [[nodiscard]] constexpr tsc_params params() const noexcept {
    return {k_.offset, k_.ratio, static_cast<std::uint8_t>(k_.frac)};
  }
  /// True for the unscaled fast path (`host = guest − offset`).
  [[nodiscard]] constexpr bool unscaled() const noexcept { return k_.unscaled; }
  /// The largest `S = guest − offset` (mod 2^64) whose host value fits 64 bits.
  [[nodiscard]] constexpr std::uint64_t max_scaled() const noexcept { return k_.unscaled ? ~std::uint64_t{0} : k_.s_max; }

  /// Checked conversion: the same value as `to_host(guest_tsc, params())`.
  [[nodiscard]] constexpr expected<std::uint64_t, errc> operator()(std::uint64_t guest_tsc) const noexcept {
    const std::uint64_t s = guest_tsc - k_.offset;
    if (k_.unscaled) return s;
    if (s > k_.s_max) return unexpected(errc::overflow);
    return scaled(s);
  }

  /// `ceil((s << frac) / ratio)` for a scaled plan. Precondition: `s <= max_scaled()`.
  [[nodiscard]] constexpr std::uint64_t scaled(std::uint64_t s) const noexcept {
    const std::uint64_t r = k_.ratio;
    const std::uint64_t e = s * k_.mi + static_cast<std::uint64_t>((static_cast<u128>(s) * k_.mf) >> 64);
    if (r > (std::uint64_t{1} << 63)) {
      const u128 rem = (static_cast<u128>(s) << k_.frac) - static_cast<u128>(e) * r;
      return e + static_cast<std::uint64_t>(rem != 0) + static_cast<std::uint64_t>(rem > r);
    }
    const std::uint64_t rem = (s << k_.frac) - e * r;
    return e + static_cast<std::uint64_t>(rem != 0) + static_cast<std::uint64_t>(rem > r);
  }

 private:
  friend struct detail::inverse_access;
  constexpr inverse_plan() noexcept = default;
  detail::inverse_constants k_;
};

}  // namespace tsync::kvm
