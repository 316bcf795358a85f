#pragma once
/// \file
/// TSC ↔ nanoseconds, as the kernel exports it.
///
/// * perf's `perf_event_mmap_page` (`time_zero`, `time_mult`, `time_shift`,
///   and for short counters `time_cycles`, `time_mask`):
///
///       cyc = time_cycles + ((cyc − time_cycles) & time_mask)     (short counters)
///       ns  = time_zero + floor(cyc * time_mult / 2^time_shift)   (mod 2^64)
///
///   with a 128-bit product. The exact inverse is the **ceiling**
///   `ceil((ns − time_zero) * 2^shift / mult)`: it round-trips
///   (`tsc_to_ns(ns_to_tsc_ceil(t)) == t` for every t the forward map can
///   produce), while perf's documented floor form usually lands one ns early.
/// * the kernel's `clocks_calc_mult_shift` and x86's `cyc2ns` derivation from
///   `tsc_khz` (shift at most 31);
/// * kvmclock (`pvclock_vcpu_time_info`): `pvclock_scale_delta` with the u32
///   `tsc_to_system_mul` and the s8 `tsc_shift`, and `kvm_get_time_scale`.
///
/// Multipliers are unsigned 32-bit everywhere (a signed `int` would
/// sign-extend multipliers >= 2^31, which every TSC <= 1 GHz has, T18).

#include <cstdint>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::kvm {

/// The conversion fields of a `perf_event_mmap_page`.
struct perf_time_params {
  std::uint64_t time_zero = 0;                    ///< ns at cycle 0 (`cap_user_time_zero`)
  std::uint32_t time_mult = 0;                    ///< multiplier (unsigned 32-bit)
  std::uint16_t time_shift = 0;                   ///< shift, at most 63
  std::uint64_t time_cycles = 0;                  ///< short counters: last full cycle value
  std::uint64_t time_mask = ~std::uint64_t{0};    ///< short counters: counter width mask (all ones = 64-bit)
  friend constexpr bool operator==(const perf_time_params&, const perf_time_params&) = default;
};

/// `errc::invalid_argument` when `time_mult == 0` or `time_shift > 63`.
[[nodiscard]] constexpr expected<void, errc> validate(const perf_time_params& p) noexcept {
  if (p.time_mult == 0 || p.time_shift > 63) return unexpected(errc::invalid_argument);
  return {};
}

/// Extend a short counter value to the full cycle count
/// (`time_cycles + ((cyc − time_cycles) & time_mask)`); the identity when the
/// mask is all ones.
[[nodiscard]] constexpr std::uint64_t extend_cycles(std::uint64_t cyc, const perf_time_params& p) noexcept {
  return p.time_cycles + ((cyc - p.time_cycles) & p.time_mask);
}

/// Cycles → ns: `time_zero + floor(cyc * time_mult / 2^time_shift)` modulo
/// 2^64 (identical to perf's quot/rem form and to `mul_u64_u32_shr`), after
/// `extend_cycles`. Precondition: `validate(p)` holds.
[[nodiscard]] constexpr std::uint64_t tsc_to_ns(std::uint64_t cyc, const perf_time_params& p) noexcept {
  return p.time_zero + mul_u64_u32_shr(extend_cycles(cyc, p), p.time_mult, p.time_shift & 63u);
}

/// Ns → cycles, the exact inverse: the smallest cycle count whose `tsc_to_ns`
/// reaches `ns`, `ceil(((ns − time_zero) mod 2^64) * 2^shift / mult)`.
/// `tsc_to_ns(ns_to_tsc_ceil(t)) == t` for every t in the image of `tsc_to_ns`
/// (every t when `mult < 2^shift`, i.e. TSC faster than 1 GHz), and
/// `0 <= c − ns_to_tsc_ceil(tsc_to_ns(c)) <= ceil(2^shift / mult) − 1`.
/// Returns the full-width count (a short counter reads `result & time_mask`).
/// Errors: `validate(p)`; `errc::overflow` when the result exceeds 2^64 − 1.
[[nodiscard]] constexpr expected<std::uint64_t, errc> ns_to_tsc_ceil(std::uint64_t ns, const perf_time_params& p) noexcept {
  if (auto v = validate(p); !v) return unexpected(v.error());
  const u128 n = static_cast<u128>(ns - p.time_zero) << p.time_shift;
  const u128 q = (n + (p.time_mult - 1u)) / p.time_mult;
  if (q >> 64) return unexpected(errc::overflow);
  return static_cast<std::uint64_t>(q);
}

/// Ns → cycles as perf documents it (`floor`); kept for comparison. Its
/// result usually converts back to `ns − 1` (T17). Prefer `ns_to_tsc_ceil`.
[[nodiscard]] constexpr expected<std::uint64_t, errc> ns_to_tsc_floor(std::uint64_t ns, const perf_time_params& p) noexcept {
  if (auto v = validate(p); !v) return unexpected(v.error());
  const u128 q = (static_cast<u128>(ns - p.time_zero) << p.time_shift) / p.time_mult;
  if (q >> 64) return unexpected(errc::overflow);
  return static_cast<std::uint64_t>(q);
}

/// Worst-case `c − ns_to_tsc_ceil(tsc_to_ns(c))`: `ceil(2^shift / mult) − 1`.
[[nodiscard]] constexpr std::uint64_t ns_round_trip_bound(const perf_time_params& p) noexcept {
  if (p.time_mult == 0) return 0;
  const u128 f = static_cast<u128>(1) << (p.time_shift & 63u);
  return static_cast<std::uint64_t>((f + p.time_mult - 1u) / p.time_mult - 1u);
}

/// A multiplier/shift pair: `to = floor(from * mult / 2^shift)`.
struct mult_shift {
  std::uint32_t mult = 0;
  std::uint32_t shift = 0;
  friend constexpr bool operator==(const mult_shift&, const mult_shift&) = default;
};

/// The kernel's `clocks_calc_mult_shift(&mult, &shift, from, to, maxsec)`:
/// the largest shift in 32..1 whose rounded multiplier
/// `((to << shift) + from/2) / from` fits the conversion range that `maxsec`
/// seconds of `from` ticks leave (32 bits when `maxsec == 0`).
/// Errors: `errc::invalid_argument` when `from == 0`; `errc::out_of_range`
/// when no shift >= 1 gives a fitting multiplier (the kernel would then
/// return a pair that does not belong together).
[[nodiscard]] constexpr expected<mult_shift, errc> clocks_calc_mult_shift(std::uint32_t from, std::uint32_t to,
                                                                         std::uint32_t maxsec) noexcept {
  if (from == 0) return unexpected(errc::invalid_argument);
  std::uint32_t sftacc = 32;
  std::uint64_t tmp = (static_cast<std::uint64_t>(maxsec) * from) >> 32;
  while (tmp != 0) {
    tmp >>= 1;
    --sftacc;
  }
  for (std::uint32_t sft = 32; sft > 0; --sft) {
    tmp = (static_cast<std::uint64_t>(to) << sft) + from / 2;
    tmp /= from;
    // sftacc is in 0..32; a shift by 32 of a u64 is defined.
    if ((tmp >> sftacc) == 0) return mult_shift{static_cast<std::uint32_t>(tmp), sft};
  }
  return unexpected(errc::out_of_range);
}

/// x86's cycles→ns scale for a TSC of `tsc_khz` (`__set_cyc2ns_scale`):
/// `clocks_calc_mult_shift(tsc_khz, NSEC_PER_MSEC, 0)`, then shift 32 becomes
/// 31 with the multiplier halved. T16: 2,999,999 kHz → 715828121 / 31;
/// T18: 800,000 kHz → 2684354560 / 31 (a multiplier >= 2^31).
/// `errc::invalid_argument` when `tsc_khz == 0`.
[[nodiscard]] constexpr expected<mult_shift, errc> cyc2ns_from_khz(std::uint32_t tsc_khz) noexcept {
  auto ms = clocks_calc_mult_shift(tsc_khz, 1000000u, 0);
  if (!ms) return ms;
  if (ms->shift == 32) {
    ms->shift = 31;
    ms->mult >>= 1;
  }
  return ms;
}

/// perf parameters from a mult/shift pair and a `time_zero`.
[[nodiscard]] constexpr perf_time_params perf_params(mult_shift ms, std::uint64_t time_zero = 0) noexcept {
  return {time_zero, ms.mult, static_cast<std::uint16_t>(ms.shift), 0, ~std::uint64_t{0}};
}

// ---------------------------------------------------------------------------
// kvmclock (pvclock)
// ---------------------------------------------------------------------------

/// The scale of a `pvclock_vcpu_time_info`.
struct pvclock_scale {
  std::uint32_t tsc_to_system_mul = 0;  ///< 0.32 fixed-point multiplier (unsigned)
  std::int8_t tsc_shift = 0;            ///< applied before the multiply: << if >= 0, >> if < 0
  friend constexpr bool operator==(const pvclock_scale&, const pvclock_scale&) = default;
};

/// The time fields of a `pvclock_vcpu_time_info` that define guest ns.
struct pvclock_time {
  std::uint64_t tsc_timestamp = 0;  ///< guest TSC at the last update
  std::uint64_t system_time = 0;    ///< guest ns at the last update
  pvclock_scale scale{};
  friend constexpr bool operator==(const pvclock_time&, const pvclock_time&) = default;
};

/// `pvclock_scale_delta`: shift `delta` (left for a positive shift, right for a
/// negative one, bits shifted out are lost as in the kernel; a shift of 64 or
/// more in either direction gives 0), then `floor(delta * mul / 2^32)`.
[[nodiscard]] constexpr std::uint64_t pvclock_scale_delta(std::uint64_t delta, pvclock_scale s) noexcept {
  const int sh = s.tsc_shift;
  if (sh <= -64 || sh >= 64) return 0;
  delta = sh < 0 ? delta >> static_cast<unsigned>(-sh) : delta << static_cast<unsigned>(sh);
  return mul_u64_u32_shr(delta, s.tsc_to_system_mul, 32);
}

/// `__pvclock_read_cycles`: `system_time + pvclock_scale_delta(tsc − tsc_timestamp)`,
/// modulo 2^64.
[[nodiscard]] constexpr std::uint64_t kvmclock_ns(std::uint64_t guest_tsc, const pvclock_time& t) noexcept {
  return t.system_time + pvclock_scale_delta(guest_tsc - t.tsc_timestamp, t.scale);
}

/// `kvm_get_time_scale(scaled_hz, base_hz)`: the pvclock scale that maps
/// `base_hz` ticks to `scaled_hz` units (KVM uses `(NSEC_PER_SEC, guest_khz*1000)`).
/// `errc::invalid_argument` when either frequency is 0 (the kernel's loops
/// would not terminate).
[[nodiscard]] constexpr expected<pvclock_scale, errc> kvm_get_time_scale(std::uint64_t scaled_hz,
                                                                        std::uint64_t base_hz) noexcept {
  if (scaled_hz == 0 || base_hz == 0) return unexpected(errc::invalid_argument);
  constexpr std::uint64_t hi32 = 0xffffffff00000000ULL;
  std::int32_t shift = 0;
  std::uint64_t tps64 = base_hz;
  std::uint64_t scaled64 = scaled_hz;
  // `scaled64 * 2` as 128 bits: the kernel's u64 product cannot wrap for real
  // frequencies, but tsync must not wrap for any input either.
  while (static_cast<u128>(tps64) > static_cast<u128>(scaled64) * 2 || (tps64 & hi32) != 0) {
    tps64 >>= 1;
    --shift;
  }
  if (tps64 == 0) return unexpected(errc::out_of_range);
  std::uint32_t tps32 = static_cast<std::uint32_t>(tps64);
  while (tps32 <= scaled64 || (scaled64 & hi32) != 0) {
    if ((scaled64 & hi32) != 0 || (tps32 & 0x80000000u) != 0) scaled64 >>= 1;
    else tps32 <<= 1;
    ++shift;
  }
  if (shift < -128 || shift > 127) return unexpected(errc::out_of_range);
  // div_frac: (scaled64 << 32) / tps32, with scaled64 < tps32 so the quotient fits 32 bits.
  const std::uint64_t mul = (scaled64 << 32) / tps32;
  return pvclock_scale{static_cast<std::uint32_t>(mul), static_cast<std::int8_t>(shift)};
}

/// The kvmclock scale KVM computes for a guest TSC of `guest_khz`
/// (`kvm_get_time_scale(NSEC_PER_SEC, guest_khz * 1000)`); pass the *scaled*
/// guest frequency (`scale_tsc(host_khz, ratio, frac)`, T20). T19: 2,999,999 kHz
/// → mul 2863312485 shift −1; 1,999,999 kHz → 2147484721 shift 0.
[[nodiscard]] constexpr expected<pvclock_scale, errc> kvmclock_scale_from_khz(std::uint64_t guest_khz) noexcept {
  if (guest_khz == 0 || guest_khz > ~std::uint64_t{0} / 1000u) return unexpected(errc::invalid_argument);
  return kvm_get_time_scale(1000000000u, guest_khz * 1000u);
}

}  // namespace tsync::kvm
