#pragma once
/// \file
/// Implementation detail of `tsync/kvm/batch.hpp`: the batch kernels of the
/// exact KVM inverse (guest → host, which is also perf's ns → TSC) and of
/// perf's TSC → ns, in the copies of `tsync/detail/simd.hpp` (AVX-512, AVX2,
/// baseline), chosen at run time. Every copy computes the same exact integer
/// formula, so the results are identical bit for bit.

#include <cstddef>
#include <cstdint>

#include "tsync/core/config.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/detail/simd.hpp"

namespace tsync::inline TSYNC_ABI::detail {

/// The constants of the exact inverse `q = ceil(S * 2^f / r)` (see
/// `kvm::inverse_plan`): m = floor(2^(64+f) / r) = mi * 2^64 + mf; inputs
/// with S = in − offset > smax overflow.
struct inverse_words {
  std::uint64_t offset, mi, mf, ratio;
  unsigned frac;
  std::uint64_t smax;
};

/// Block length of the checked inverse: a block is checked for overflow (one
/// vector pass, in L1 afterwards), then converted without checks.
inline constexpr std::size_t inverse_block = 512;

/// The inverse over [begin, end) for r <= 2^63 (the remainder fits 64 bits),
/// `W` lanes at a time, without overflow checks. MiKind: 0 when mi == 0, 1 when
/// mi == 1, 2 when mi < 2^32, 3 otherwise; SmallR: r < 2^32 (perf's ns → TSC,
/// where r is `time_mult`). Both pick cheaper products (32×32→64 multiplies
/// instead of a full 64×64 one). Returns where it stopped (a multiple of W
/// from begin); the caller finishes with W == 1.
template <std::size_t W, int MiKind, bool SmallR>
[[gnu::always_inline]] inline std::size_t inverse_lanes(const std::uint64_t* in, std::uint64_t* out, std::size_t begin,
                                                        std::size_t end, const inverse_words& k, vu<W>& smax_seen) noexcept {
  const vu<W> o = vu<W>{} + k.offset, mi = vu<W>{} + k.mi, mf = vu<W>{} + k.mf, r = vu<W>{} + k.ratio;
  const unsigned f = k.frac;
  std::size_t i = begin;
  for (; i + W <= end; i += W) {
    vu<W> s, e, t;
    vload<W>(s, in + i);
    s -= o;
    smax_seen = s > smax_seen ? s : smax_seen;  // the largest S, lane-wise (the overflow check)
    mulhi<W>(e, s, mf);
    if constexpr (MiKind == 1) e += s;
    if constexpr (MiKind == 2) {
      mul_u32<W>(t, s, mi);
      e += t;
    }
    if constexpr (MiKind == 3) e += s * mi;
    if constexpr (SmallR) mul_u32<W>(t, e, r);
    else t = e * r;
    const vu<W> rem = (s << f) - t;
    add_if_nonzero<W>(e, rem);
    add_if_greater<W>(e, rem, r);
    vstore<W>(out + i, e);
  }
  return i;
}

/// The first index in [begin, end) whose input overflows (S > smax), or end:
/// one vector pass that counts the overflowing lanes, then a scalar search
/// only when there is one.
template <std::size_t W>
[[gnu::always_inline]] inline std::size_t inverse_first_overflow(const std::uint64_t* in, std::size_t begin,
                                                                 std::size_t end, const inverse_words& k) noexcept {
  const vu<W> o = vu<W>{} + k.offset, smax = vu<W>{} + k.smax;
  vu<W> bad{};
  std::size_t i = begin;
  for (; i + W <= end; i += W) {
    vu<W> s;
    vload<W>(s, in + i);
    add_if_greater<W>(bad, s - o, smax);
  }
  std::uint64_t any = 0;
  if constexpr (W == 1) {
    any = bad;
  } else {
    for (std::size_t j = 0; j < W; ++j) any |= bad[j];
  }
  for (; i < end; ++i) any |= static_cast<std::uint64_t>(in[i] - k.offset > k.smax);
  if (any == 0) return end;
  std::size_t stop = begin;
  while (in[stop] - k.offset <= k.smax) ++stop;
  return stop;
}

template <std::size_t W, int MiKind, bool SmallR>
[[gnu::always_inline]] inline std::size_t inverse_checked(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                          const inverse_words& k) noexcept {
  for (std::size_t base = 0; base < n; base += inverse_block) {
    const std::size_t end = n - base < inverse_block ? n : base + inverse_block;
    if (in != out) {
      // Out of place: convert the block while tracking the largest S; only
      // when it overflows, find the first failing input (they are untouched).
      vu<W> seen{};
      std::uint64_t seen1 = 0;
      inverse_lanes<1, MiKind, SmallR>(in, out, inverse_lanes<W, MiKind, SmallR>(in, out, base, end, k, seen), end, k,
                                       seen1);
      if constexpr (W == 1) {
        seen1 = seen > seen1 ? seen : seen1;
      } else {
        for (std::size_t j = 0; j < W; ++j) seen1 = seen[j] > seen1 ? seen[j] : seen1;
      }
      if (seen1 > k.smax) return inverse_first_overflow<1>(in, base, end, k);
      continue;
    }
    // In place: the check reads the untouched inputs first, so the first failing index is exact.
    const std::size_t stop = inverse_first_overflow<W>(in, base, end, k);
    vu<W> seen{};
    std::uint64_t seen1 = 0;
    inverse_lanes<1, MiKind, SmallR>(in, out, inverse_lanes<W, MiKind, SmallR>(in, out, base, stop, k, seen), stop, k,
                                     seen1);
    if (stop != end) return stop;
  }
  return n;
}

template <std::size_t W, bool SmallR>
[[gnu::always_inline]] inline std::size_t inverse_checked_r(const std::uint64_t* in, std::uint64_t* out,
                                                            std::size_t n, const inverse_words& k) noexcept {
  if (k.mi == 0) return inverse_checked<W, 0, SmallR>(in, out, n, k);
  if (k.mi == 1) return inverse_checked<W, 1, SmallR>(in, out, n, k);
  if (k.mi < (std::uint64_t{1} << 32)) return inverse_checked<W, 2, SmallR>(in, out, n, k);
  return inverse_checked<W, 3, SmallR>(in, out, n, k);
}

template <std::size_t W>
[[gnu::always_inline]] inline std::size_t inverse_checked_w(const std::uint64_t* in, std::uint64_t* out,
                                                            std::size_t n, const inverse_words& k) noexcept {
  if (k.ratio < (std::uint64_t{1} << 32)) return inverse_checked_r<W, true>(in, out, n, k);
  return inverse_checked_r<W, false>(in, out, n, k);
}

inline std::size_t inverse_baseline(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                    const inverse_words& k) noexcept {
  return inverse_checked_w<1>(in, out, n, k);
}
#if TSYNC_SIMD_X86
[[gnu::target("avx2")]] inline std::size_t inverse_avx2(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                        const inverse_words& k) noexcept {
  return inverse_checked_w<4>(in, out, n, k);
}
[[gnu::target("avx512f,avx512dq")]] inline std::size_t inverse_avx512(const std::uint64_t* in, std::uint64_t* out,
                                                                      std::size_t n, const inverse_words& k) noexcept {
  return inverse_checked_w<8>(in, out, n, k);
}
#endif

/// The inverse over [0, n) with the copy `which` (which the CPU must run), with
/// overflow checks: returns the index of the first input whose result
/// overflows (S > smax; `out` is final before it), or n. Any ratio: r > 2^63
/// (remainder in 128 bits, so mi == 0) is scalar on every copy. `in` and `out`
/// may be equal.
inline std::size_t inverse(isa which, const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                           const inverse_words& k) noexcept {
  if (k.ratio > (std::uint64_t{1} << 63)) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t s = in[i] - k.offset;
      if (s > k.smax) return i;
      const std::uint64_t e = static_cast<std::uint64_t>((static_cast<u128>(s) * k.mf) >> 64);
      const u128 rem = (static_cast<u128>(s) << k.frac) - static_cast<u128>(e) * k.ratio;
      out[i] = e + static_cast<std::uint64_t>(rem != 0) + static_cast<std::uint64_t>(rem > k.ratio);
    }
    return n;
  }
#if TSYNC_SIMD_X86
  if (which == isa::avx512) return inverse_avx512(in, out, n, k);
  if (which == isa::avx2) return inverse_avx2(in, out, n, k);
#endif
  (void)which;
  return inverse_baseline(in, out, n, k);
}

/// perf's TSC → ns in its quotient/remainder form, exact for shift <= 32:
/// cyc = cycles + ((c − cycles) & mask); ns = zero + (cyc >> shift) * mult +
/// (((cyc & (2^shift − 1)) * mult) >> shift), every step modulo 2^64, which is
/// floor(cyc * mult / 2^shift) + zero modulo 2^64.
struct perf_words {
  std::uint64_t zero, cycles, mask;
  std::uint32_t mult;
  unsigned shift;  // <= 32
};

template <std::size_t W>
[[gnu::always_inline]] inline std::size_t perf_ns_lanes(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                        const perf_words& k, std::size_t i) noexcept {
  const vu<W> zero = vu<W>{} + k.zero, cyc0 = vu<W>{} + k.cycles, mask = vu<W>{} + k.mask;
  const vu<W> mult = vu<W>{} + std::uint64_t{k.mult};
  const std::uint64_t low = (std::uint64_t{1} << k.shift) - 1;
  const unsigned sh = k.shift;
  for (; i + W <= n; i += W) {
    vu<W> c, qm;
    vload<W>(c, in + i);
    c = cyc0 + ((c - cyc0) & mask);
    const vu<W> rem = c & low;  // < 2^32
    mul_u32<W>(qm, c >> sh, mult);
    vstore<W>(out + i, zero + qm + (((rem & 0xffffffffU) * mult) >> sh));
  }
  return i;
}

inline void perf_ns_baseline(const std::uint64_t* in, std::uint64_t* out, std::size_t n, const perf_words& k) noexcept {
  perf_ns_lanes<1>(in, out, n, k, 0);
}
#if TSYNC_SIMD_X86
[[gnu::target("avx2")]] inline void perf_ns_avx2(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                                 const perf_words& k) noexcept {
  perf_ns_lanes<1>(in, out, n, k, perf_ns_lanes<4>(in, out, n, k, 0));
}
[[gnu::target("avx512f,avx512dq")]] inline void perf_ns_avx512(const std::uint64_t* in, std::uint64_t* out,
                                                               std::size_t n, const perf_words& k) noexcept {
  perf_ns_lanes<1>(in, out, n, k, perf_ns_lanes<8>(in, out, n, k, 0));
}
#endif

/// TSC → ns over [0, n) with the copy `which`; `k.shift <= 32`.
inline void perf_ns(isa which, const std::uint64_t* in, std::uint64_t* out, std::size_t n, const perf_words& k) noexcept {
#if TSYNC_SIMD_X86
  if (which == isa::avx512) return perf_ns_avx512(in, out, n, k);
  if (which == isa::avx2) return perf_ns_avx2(in, out, n, k);
#endif
  (void)which;
  perf_ns_baseline(in, out, n, k);
}

}  // namespace tsync::detail
