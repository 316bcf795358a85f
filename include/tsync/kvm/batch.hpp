#pragma once
/// \file
/// Batch KVM TSC conversions over spans: host → guest and the exact inverse
/// guest → host through a prepared `inverse_plan`, bit for bit the scalar
/// results of `tsync/kvm/tsc.hpp`. The inverse has an AVX-512 kernel chosen at
/// run time by CPU detection (`tsync/detail/kvm_batch_avx512.hpp`) and a
/// portable kernel used everywhere else and for the tail.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/kvm/tsc.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::kvm {

// ---------------------------------------------------------------------------
// Batch conversions.
// ---------------------------------------------------------------------------

namespace detail {
inline constexpr std::size_t kvm_batch_block = 512;

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

// The inverse formula of `inverse_plan` over [begin, end), without checks.
// MiKind: 0 when mi == 0, 1 when mi == 1, 2 otherwise (saves a multiply).
// Wide: r > 2^63, remainder in 128 bits.
template <int MiKind, bool Wide>
inline void inverse_loop(const std::uint64_t* in, std::uint64_t* out, std::size_t begin, std::size_t end,
                         std::uint64_t o, std::uint64_t mi, std::uint64_t mf, std::uint64_t r,
                         unsigned f) noexcept {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
  for (std::size_t i = begin; i < end; ++i) {
    const std::uint64_t s = in[i] - o;
    std::uint64_t e = static_cast<std::uint64_t>((static_cast<u128>(s) * mf) >> 64);
    if constexpr (MiKind == 1) e += s;
    if constexpr (MiKind == 2) e += s * mi;
    if constexpr (Wide) {
      const u128 rem = (static_cast<u128>(s) << f) - static_cast<u128>(e) * r;
      out[i] = e + static_cast<std::uint64_t>(rem != 0) + static_cast<std::uint64_t>(rem > r);
    } else {
      const std::uint64_t rem = (s << f) - e * r;
      out[i] = e + static_cast<std::uint64_t>(rem != 0) + static_cast<std::uint64_t>(rem > r);
    }
  }
}

/// The portable batch kernel for a scaled plan, over [start, n); in and out may be equal.
inline expected<void, batch_error> to_host_batch_portable(const std::uint64_t* in, std::uint64_t* out,
                                                          std::size_t start, std::size_t n,
                                                          const inverse_constants& k) noexcept {
  // Locals: the compiler need not reload them after each store to `out`.
  const std::uint64_t o = k.offset, mi = k.mi, mf = k.mf, r = k.ratio, smax = k.s_max;
  const unsigned f = k.frac;
  const bool wide = r > (std::uint64_t{1} << 63);
  for (std::size_t base = start; base < n; base += kvm_batch_block) {
    const std::size_t end = std::min(n, base + kvm_batch_block);
    // Overflow pre-check on the untouched inputs (vectorisable), so that the
    // conversion loop has no checks and the first failing index is exact even in place.
    std::uint64_t bad = 0;
    for (std::size_t i = base; i < end; ++i) bad |= static_cast<std::uint64_t>(in[i] - o > smax);
    std::size_t stop = end;
    if (bad != 0) {
      stop = base;
      while (in[stop] - o <= smax) ++stop;
    }
    if (wide) inverse_loop<0, true>(in, out, base, stop, o, mi, mf, r, f);  // r > 2^63 implies mi == 0
    else if (mi == 0) inverse_loop<0, false>(in, out, base, stop, o, mi, mf, r, f);
    else if (mi == 1) inverse_loop<1, false>(in, out, base, stop, o, mi, mf, r, f);
    else inverse_loop<2, false>(in, out, base, stop, o, mi, mf, r, f);
    if (stop != end) return unexpected(batch_error{errc::overflow, stop});
  }
  return {};
}

}  // namespace detail
}  // namespace tsync::kvm

#include "tsync/detail/kvm_batch_avx512.hpp"

namespace tsync::inline TSYNC_ABI::kvm {

namespace detail {
/// The batch kernel behind `to_host(span, span, plan)`; `in` and `out` may be equal.
inline expected<void, batch_error> to_host_batch(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                      const inverse_plan& plan) noexcept {
  const detail::inverse_constants& k = detail::inverse_access::get(plan);
  if (k.unscaled) {
    detail::add_offset(in, out, n, 0 - k.offset);
    return {};
  }
  const std::size_t done = detail::to_host_prefix_avx512(in, out, n, k);
  return detail::to_host_batch_portable(in, out, done, n, k);
}
}  // namespace detail

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
  return detail::to_host_batch(in.data(), out.data(), in.size(), plan);
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

