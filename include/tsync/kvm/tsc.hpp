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
#include <span>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"

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

}  // namespace tsync::kvm
