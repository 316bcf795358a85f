#pragma once
/// \file
/// Implementation detail of `tsync/kvm/batch.hpp`: the AVX-512 kernel of the
/// batch KVM inverse, compiled with a target attribute (whatever the
/// embedder's flags) and used only when the CPU reports AVX-512F and DQ.
/// Included only by the batch header: the scalar KVM math does not pay for
/// `<immintrin.h>`.

#include <cstddef>
#include <cstdint>

#include "tsync/kvm/tsc.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include "tsync/core/config.hpp"
/// 1 when the AVX-512 batch inverse is compiled in (selected at run time by CPU).
#define TSYNC_KVM_AVX512_KERNEL 1
#else
#define TSYNC_KVM_AVX512_KERNEL 0
#endif

namespace tsync::inline TSYNC_ABI::kvm::detail {

#if TSYNC_KVM_AVX512_KERNEL
// The inverse formula on 8 lanes. hi(S * mf) is built from four 32×32→64
// products (vpmuludq); e * r and S * mi are low products (vpmullq, AVX-512DQ).
// Converts whole vectors from index 0 while every S is at most s_max and
// returns how many values it converted (a multiple of 8); the caller finishes
// [returned, n) with the portable kernel, which also finds the exact first
// overflow. Precondition: scaled plan with r <= 2^63.
template <int MiKind>
[[gnu::target("avx512f,avx512dq")]] inline std::size_t to_host_prefix_avx512_impl(
    const std::uint64_t* in, std::uint64_t* out, std::size_t n, const inverse_constants& k) noexcept {
  const __m512i vo = _mm512_set1_epi64(static_cast<long long>(k.offset));
  const __m512i vsmax = _mm512_set1_epi64(static_cast<long long>(k.s_max));
  const __m512i vr = _mm512_set1_epi64(static_cast<long long>(k.ratio));
  const __m512i vmi = _mm512_set1_epi64(static_cast<long long>(k.mi));
  const __m512i vm0 = _mm512_set1_epi64(static_cast<long long>(k.mf & 0xffffffffU));  // vpmuludq reads bits 0..31
  const __m512i vm1 = _mm512_set1_epi64(static_cast<long long>(k.mf >> 32));
  const __m512i lo32 = _mm512_set1_epi64(0xffffffffLL);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i one = _mm512_set1_epi64(1);
  const __m128i fcount = _mm_cvtsi64_si128(static_cast<long long>(k.frac));
  // The zero-masking forms with a full mask are the plain instructions; they
  // avoid GCC 12's `_mm512_undefined_epi32` (a -Wmaybe-uninitialized false positive).
  const __mmask8 all = 0xff;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i s = _mm512_sub_epi64(_mm512_loadu_si512(in + i), vo);
    if (_mm512_cmpgt_epu64_mask(s, vsmax) != 0) break;
    // hi(S * mf) by schoolbook on 32-bit halves; no step can wrap:
    // t = s1*m0 + hi32(s0*m0) < 2^64, u = lo32(t) + s0*m1 < 2^64.
    const __m512i sh = _mm512_maskz_srli_epi64(all, s, 32);
    const __m512i p00 = _mm512_maskz_mul_epu32(all, s, vm0);
    const __m512i p01 = _mm512_maskz_mul_epu32(all, s, vm1);
    const __m512i p10 = _mm512_maskz_mul_epu32(all, sh, vm0);
    const __m512i p11 = _mm512_maskz_mul_epu32(all, sh, vm1);
    const __m512i t = _mm512_add_epi64(p10, _mm512_maskz_srli_epi64(all, p00, 32));
    const __m512i u = _mm512_add_epi64(_mm512_and_si512(t, lo32), p01);
    __m512i e = _mm512_add_epi64(_mm512_add_epi64(p11, _mm512_maskz_srli_epi64(all, t, 32)), _mm512_maskz_srli_epi64(all, u, 32));
    if constexpr (MiKind == 1) e = _mm512_add_epi64(e, s);
    if constexpr (MiKind == 2) e = _mm512_add_epi64(e, _mm512_mullo_epi64(s, vmi));
    const __m512i rem = _mm512_sub_epi64(_mm512_maskz_sll_epi64(all, s, fcount), _mm512_mullo_epi64(e, vr));
    e = _mm512_mask_add_epi64(e, _mm512_cmpneq_epu64_mask(rem, zero), e, one);
    e = _mm512_mask_add_epi64(e, _mm512_cmpgt_epu64_mask(rem, vr), e, one);
    _mm512_storeu_si512(out + i, e);
  }
  return i;
}
#endif

/// True when the AVX-512 batch kernel is compiled in and the CPU (and OS) run it.
/// Always a run-time check, even when the build targets AVX-512, so that every
/// translation unit sees the same definition whatever its `-m` flags.
inline bool avx512_kernel_usable() noexcept {
#if TSYNC_KVM_AVX512_KERNEL
  static const bool usable = [] {
    __builtin_cpu_init();  // idempotent; makes the check valid even in early static initialisers
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  }();
  return usable;
#else
  return false;
#endif
}

/// The AVX-512 prefix kernel (see above), or 0 when it is unavailable or the
/// plan is outside its range (unscaled, or r > 2^63).
inline std::size_t to_host_prefix_avx512(const std::uint64_t* in, std::uint64_t* out, std::size_t n,
                                         const inverse_constants& k) noexcept {
#if TSYNC_KVM_AVX512_KERNEL
  if (k.unscaled || k.ratio > (std::uint64_t{1} << 63) || !avx512_kernel_usable()) return 0;
  if (k.mi == 0) return to_host_prefix_avx512_impl<0>(in, out, n, k);
  if (k.mi == 1) return to_host_prefix_avx512_impl<1>(in, out, n, k);
  return to_host_prefix_avx512_impl<2>(in, out, n, k);
#else
  (void)in, (void)out, (void)n, (void)k;
  return 0;
#endif
}

}  // namespace tsync::kvm::detail
