#pragma once
/// \file
/// How KVM chooses a vCPU's TSC parameters: the scaling ratio from the
/// requested and the host frequency (`set_tsc_khz`), the 250 ppm tolerance
/// window of `kvm_set_tsc_khz`, the offset at vCPU creation
/// (`kvm_compute_l1_tsc_offset`), the scaled frequency the guest's kvmclock is
/// computed for, and the largest guest frequency a host supports.
///
/// These reproduce the kernel's integer arithmetic exactly (floors included),
/// so that a tool can predict the values debugfs will show.

#include <algorithm>
#include <cstdint>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/kvm/tsc.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::kvm {

/// KVM's default `tsc_tolerance_ppm` module parameter.
inline constexpr std::uint32_t default_tsc_tolerance_ppm = 250;

/// `kvm_scale_tsc`: `value` unchanged when `ratio == 2^frac_bits`, otherwise
/// `floor(value * ratio / 2^frac_bits)` truncated to 64 bits. Applied to a
/// frequency in kHz it gives the frequency KVM uses for the guest's kvmclock
/// (T20: 2,999,999 kHz scaled by 2/3 is 1,999,999 kHz, not 2,000,000).
/// `frac_bits` must be at most 63.
[[nodiscard]] constexpr std::uint64_t scale_tsc(std::uint64_t value, std::uint64_t ratio, std::uint8_t frac_bits) noexcept {
  if (ratio == (std::uint64_t{1} << (frac_bits & 63u))) return value;
  return mul_u64_u64_shr(value, ratio, frac_bits & 63u);
}

/// The ratio KVM programs for a guest of `guest_khz` on a host calibrated at
/// `host_khz`: `floor(2^frac * guest_khz / host_khz)` (`set_tsc_khz`).
/// Errors as the kernel's "Invalid TSC scaling ratio": `errc::invalid_argument`
/// when `host_khz == 0`; `errc::zero_ratio` when the ratio floors to 0;
/// `errc::ratio_above_max` when it is `>= v.max_ratio` (the kernel rejects the
/// maximum itself).
[[nodiscard]] constexpr expected<std::uint64_t, errc> ratio_from_khz(std::uint32_t guest_khz, std::uint32_t host_khz,
                                                                    const vendor_format& v) noexcept {
  if (host_khz == 0 || v.frac_bits > 63) return unexpected(errc::invalid_argument);
  const u128 q = (static_cast<u128>(guest_khz) << v.frac_bits) / host_khz;
  if (q == 0) return unexpected(errc::zero_ratio);
  if (q >= v.max_ratio) return unexpected(errc::ratio_above_max);
  return static_cast<std::uint64_t>(q);
}

/// True when `kvm_set_tsc_khz` turns scaling on: the requested frequency lies
/// outside `[host*(1e6−ppm)/1e6, host*(1e6+ppm)/1e6]` (both floored). Inside
/// the window KVM writes the default ratio (T7: 3,000,000 kHz on a 2,999,999 kHz
/// host is not scaled).
[[nodiscard]] constexpr bool needs_scaling(std::uint32_t guest_khz, std::uint32_t host_khz,
                                           std::uint32_t tolerance_ppm = default_tsc_tolerance_ppm) noexcept {
  const std::uint64_t lo_ppm = tolerance_ppm > 1000000u ? 0 : 1000000u - tolerance_ppm;
  const std::uint64_t lo = static_cast<std::uint64_t>(host_khz) * lo_ppm / 1000000u;
  const std::uint64_t hi = static_cast<std::uint64_t>(host_khz) * (1000000u + std::uint64_t{tolerance_ppm}) / 1000000u;
  return guest_khz < lo || guest_khz > hi;
}

/// The lowest and highest frequency KVM accepts without scaling (the window of `needs_scaling`).
struct khz_window {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
};
/// The tolerance window around `host_khz` (T7: 2999249 .. 3000748 for 2,999,999 kHz).
[[nodiscard]] constexpr khz_window tolerance_window(std::uint32_t host_khz,
                                                    std::uint32_t tolerance_ppm = default_tsc_tolerance_ppm) noexcept {
  const std::uint64_t lo_ppm = tolerance_ppm > 1000000u ? 0 : 1000000u - tolerance_ppm;
  return {static_cast<std::uint64_t>(host_khz) * lo_ppm / 1000000u,
          static_cast<std::uint64_t>(host_khz) * (1000000u + std::uint64_t{tolerance_ppm}) / 1000000u};
}

/// `max_guest_tsc_khz = min(0x7fffffff, scale(max_ratio, host_khz))` (T25).
[[nodiscard]] constexpr std::uint64_t max_guest_tsc_khz(std::uint32_t host_khz, const vendor_format& v) noexcept {
  return std::min<std::uint64_t>(0x7fffffffu, mul_u64_u64_shr(host_khz, v.max_ratio, v.frac_bits));
}

/// `kvm_compute_l1_tsc_offset`: the offset that makes the guest read
/// `target_guest_tsc` at host TSC `host_tsc`: `target − scale(host_tsc)`,
/// modulo 2^64. At vCPU creation the target is 0, so the offset is minus the
/// scaled host uptime (T8).
[[nodiscard]] constexpr tsc_params params_for_target(std::uint64_t host_tsc, std::uint64_t target_guest_tsc,
                                                     std::uint64_t ratio, std::uint8_t frac_bits) noexcept {
  return {target_guest_tsc - scale_tsc(host_tsc, ratio, frac_bits), ratio, frac_bits};
}

}  // namespace tsync::kvm
