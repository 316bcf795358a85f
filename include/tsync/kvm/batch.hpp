#pragma once
/// \file
/// Batch KVM TSC conversions over spans: host → guest and the exact inverse
/// guest → host through a prepared `inverse_plan`, bit for bit the scalar
/// results of `tsync/kvm/tsc.hpp`; and perf's TSC ↔ ns over spans, bit for bit
/// the scalar results of `tsync/kvm/clock_ns.hpp`. The kernels exist in
/// AVX-512, AVX2 and baseline copies chosen once at run time by CPU detection
/// (`tsync/detail/kvm_batch_kernels.hpp`), whatever the compiler flags.

#include <cstddef>
#include <cstdint>
#include <span>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/detail/kvm_batch_kernels.hpp"
#include "tsync/detail/simd.hpp"
#include "tsync/kvm/clock_ns.hpp"
#include "tsync/kvm/tsc.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::kvm {

// ---------------------------------------------------------------------------
// Batch conversions.
// ---------------------------------------------------------------------------

namespace detail {
struct inverse_access {
  [[nodiscard]] static constexpr const inverse_constants& get(const inverse_plan& p) noexcept { return p.k_; }
};

// out[i] = in[i] + o; in and out may be the same range.
inline void add_offset(const std::uint64_t* in, std::uint64_t* out, std::size_t n, std::uint64_t o) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i] + o;
}
inline void scale_add(const std::uint64_t* in, std::uint64_t* out, std::size_t n, std::uint64_t r,
                      unsigned f, std::uint64_t o) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = mul_u64_u64_shr(in[i], r, f) + o;
}

/// The batch inverse over [0, n) with the kernel copy `which` (see
/// `tsync/detail/simd.hpp`; the CPU must run it); `in` and `out` may be equal.
inline expected<void, index_error> to_host_batch(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                 const inverse_constants& k, tsync::detail::isa which) noexcept {
  if (k.unscaled) {
    add_offset(in, out, n, 0 - k.offset);
    return {};
  }
  const tsync::detail::inverse_words w{k.offset, k.mi, k.mf, k.ratio, k.frac, k.s_max};
  // Overflow checks per block on the untouched inputs inside the kernel copy,
  // so the first failing index is exact even in place.
  const std::size_t stop = tsync::detail::inverse(which, in, out, n, w);
  if (stop != n) return unexpected(index_error{errc::overflow, stop});
  return {};
}

/// The batch kernel behind `to_host(span, span, plan)`, with the widest kernel copy the CPU runs.
inline expected<void, index_error> to_host_batch(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                 const inverse_plan& plan) noexcept {
  return to_host_batch(in, out, n, inverse_access::get(plan), tsync::detail::best_isa());
}

/// perf's TSC → ns over a range with the kernel copy `which`.
/// Precondition: `validate(p)` holds.
inline void tsc_to_ns_batch(const std::uint64_t* in, std::uint64_t* out, std::size_t n, const perf_time_params& p,
                            tsync::detail::isa which) noexcept {
  if (p.time_shift <= 32) {
    tsync::detail::perf_ns(which, in, out, n, {p.time_zero, p.time_cycles, p.time_mask, p.time_mult, p.time_shift});
    return;
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = tsc_to_ns(in[i], p);  // the 128-bit form
}

/// The `inverse_plan` of perf's ns → TSC: the KVM inverse with offset =
/// time_zero, ratio = mult, frac = shift (`ceil((ns − zero) * 2^shift / mult)`).
inline expected<inverse_plan, errc> ns_to_tsc_plan(const perf_time_params& p) noexcept {
  if (auto v = validate(p); !v) return unexpected(v.error());
  return inverse_plan::make(tsc_params{p.time_zero, p.time_mult, static_cast<std::uint8_t>(p.time_shift)});
}
}  // namespace detail

/// Host → guest for a whole range: `out[i] = to_guest(in[i], p)`, bit for bit.
/// Errors: `errc::invalid_argument` (index 0) when `out.size() != in.size()`,
/// or the `validate(p)` error. `in` and `out` may be the same range, but must
/// not otherwise overlap.
[[nodiscard]] inline expected<void, index_error> to_guest(std::span<const std::uint64_t> in,
                                                         std::span<std::uint64_t> out,
                                                         const tsc_params& p) noexcept {
  if (auto v = validate(p); !v) return unexpected(index_error{v.error(), 0});
  if (in.size() != out.size()) return unexpected(index_error{errc::invalid_argument, 0});
  if (p.is_unscaled()) detail::add_offset(in.data(), out.data(), in.size(), p.offset);
  else detail::scale_add(in.data(), out.data(), in.size(), p.ratio, p.frac_bits, p.offset);
  return {};
}
/// In-place host → guest.
[[nodiscard]] inline expected<void, index_error> to_guest(std::span<std::uint64_t> inout, const tsc_params& p) noexcept {
  return to_guest(std::span<const std::uint64_t>(inout.data(), inout.size()), inout, p);
}

/// Guest → host for a whole range with a prepared plan (see `inverse_plan`):
/// `out[i] == *to_host(in[i], plan.params())`, bit for bit.
/// On `errc::overflow` the error holds the index of the first value whose
/// exact result does not fit 64 bits; `out` is then final before that index
/// and unspecified from it on. `in` and `out` may be the same range, but must
/// not otherwise overlap.
[[nodiscard]] inline expected<void, index_error> to_host(std::span<const std::uint64_t> in,
                                                        std::span<std::uint64_t> out,
                                                        const inverse_plan& plan) noexcept {
  if (in.size() != out.size()) return unexpected(index_error{errc::invalid_argument, 0});
  return detail::to_host_batch(in.data(), out.data(), in.size(), plan);
}

/// Guest → host for a whole range (builds an `inverse_plan` once).
[[nodiscard]] inline expected<void, index_error> to_host(std::span<const std::uint64_t> in,
                                                        std::span<std::uint64_t> out,
                                                        const tsc_params& p) noexcept {
  auto plan = inverse_plan::make(p);
  if (!plan) return unexpected(index_error{plan.error(), 0});
  return to_host(in, out, *plan);
}
/// In-place guest → host.
[[nodiscard]] inline expected<void, index_error> to_host(std::span<std::uint64_t> inout, const tsc_params& p) noexcept {
  return to_host(std::span<const std::uint64_t>(inout.data(), inout.size()), inout, p);
}

/// perf's TSC → ns for a whole range: `out[i] == tsc_to_ns(in[i], p)`, bit for
/// bit (perf's quotient/remainder form when `time_shift <= 32`, the 128-bit
/// form otherwise). Errors (index 0): `validate(p)`, or `errc::invalid_argument`
/// when the sizes differ. `in` and `out` may be the same range, but must not
/// otherwise overlap.
[[nodiscard]] inline expected<void, index_error> tsc_to_ns(std::span<const std::uint64_t> in,
                                                          std::span<std::uint64_t> out,
                                                          const perf_time_params& p) noexcept {
  if (auto v = validate(p); !v) return unexpected(index_error{v.error(), 0});
  if (in.size() != out.size()) return unexpected(index_error{errc::invalid_argument, 0});
  detail::tsc_to_ns_batch(in.data(), out.data(), in.size(), p, tsync::detail::best_isa());
  return {};
}

/// perf's ns → TSC for a whole range, the exact inverse: `out[i] ==
/// *ns_to_tsc_ceil(in[i], p)`, bit for bit, through the KVM inverse kernels.
/// Errors: `validate(p)` or `errc::invalid_argument` (sizes differ) at index 0;
/// `errc::overflow` at the first value whose result exceeds 2^64 − 1 (`out`
/// is final before it). `in` and `out` may be the same range, but must not
/// otherwise overlap.
[[nodiscard]] inline expected<void, index_error> ns_to_tsc_ceil(std::span<const std::uint64_t> in,
                                                               std::span<std::uint64_t> out,
                                                               const perf_time_params& p) noexcept {
  auto plan = detail::ns_to_tsc_plan(p);
  if (!plan) return unexpected(index_error{plan.error(), 0});
  return to_host(in, out, *plan);
}

}  // namespace tsync::kvm
