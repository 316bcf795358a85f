#pragma once
/// \file
/// Implementation detail: run-time selection of the vector kernels.
///
/// tsync is header-only, so the embedder's compiler flags decide what a plain
/// loop compiles to. The batch kernels therefore exist in several copies, each
/// compiled with a target attribute whatever the flags: AVX-512 (F+DQ),
/// AVX2 and baseline x86-64 on x86-64 with GCC or clang, and one portable copy
/// everywhere else. `best_isa()` picks the widest one the CPU (and OS) run,
/// once; every copy gives the same result bit for bit (the kernels are exact
/// integer arithmetic, and the tests run every copy the CPU has on the same data).
///
/// The kernels are written once, as templates over the lane count `W`, with
/// GCC/clang vector extensions (`vec<W>`); `W == 1` is the scalar copy.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tsync/core/config.hpp"
#include "tsync/core/int128.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/// 1 when the AVX2 and AVX-512 kernel copies are compiled in (chosen at run time).
#define TSYNC_SIMD_X86 1
#else
#define TSYNC_SIMD_X86 0
#endif

namespace tsync::inline TSYNC_ABI::detail {

/// The kernel copies, narrowest first.
enum class isa : unsigned char {
  baseline = 0,  ///< scalar (baseline x86-64, or the portable copy on other architectures)
  avx2 = 1,      ///< 4 lanes of 64 bits
  avx512 = 2,    ///< 8 lanes of 64 bits (AVX-512F and DQ)
};

/// The widest copy the CPU (and OS) run, detected once.
inline isa best_isa() noexcept {
#if TSYNC_SIMD_X86
  static const isa best = [] {
    __builtin_cpu_init();  // idempotent; valid even in early static initialisers
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return isa::avx512;
    if (__builtin_cpu_supports("avx2")) return isa::avx2;
    return isa::baseline;
  }();
  return best;
#else
  return isa::baseline;
#endif
}
/// True when the CPU runs the copy `i` (always true for `isa::baseline`).
inline bool isa_usable(isa i) noexcept { return static_cast<unsigned>(i) <= static_cast<unsigned>(best_isa()); }

/// A short name of a copy (benchmarks and test reports).
constexpr const char* isa_name(isa i) noexcept {
  switch (i) {
    case isa::avx512: return "avx512";
    case isa::avx2: return "avx2";
    case isa::baseline: break;
  }
  return "baseline";
}

/// `W` lanes of uint64 (a plain uint64 for `W == 1`).
template <std::size_t W>
struct vec {
  using u [[gnu::vector_size(W * 8)]] = std::uint64_t;
  using s [[gnu::vector_size(W * 8)]] = std::int64_t;
};
template <>
struct vec<1> {
  using u = std::uint64_t;
  using s = std::int64_t;
};

template <std::size_t W>
using vu = typename vec<W>::u;
template <std::size_t W>
using vs = typename vec<W>::s;

// The helpers below write their result through a reference: a vector passed
// or returned by value would change the calling convention between the copies
// (GCC's -Wpsabi), even though every helper is inlined.

/// Unaligned load and store of `W` lanes.
template <std::size_t W>
[[gnu::always_inline]] inline void vload(vu<W>& v, const void* p) noexcept {
  std::memcpy(&v, p, sizeof v);
}
template <std::size_t W>
[[gnu::always_inline]] inline void vstore(void* p, const vu<W>& v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

/// `r = a + [x != 0]` lane-wise.
template <std::size_t W>
[[gnu::always_inline]] inline void add_if_nonzero(vu<W>& r, const vu<W>& x) noexcept {
  if constexpr (W == 1) r += static_cast<std::uint64_t>(x != 0);
  else r -= __builtin_convertvector(x != 0, vu<W>);  // true lanes are all ones: − (−1)
}
/// `r = r + [x > y]` lane-wise (unsigned).
template <std::size_t W>
[[gnu::always_inline]] inline void add_if_greater(vu<W>& r, const vu<W>& x, const vu<W>& y) noexcept {
  if constexpr (W == 1) r += static_cast<std::uint64_t>(x > y);
  else r -= __builtin_convertvector(x > y, vu<W>);
}

/// `r = high 64 bits of the unsigned product a * b`, exact. Scalar: one
/// 64×64→128 product; vectors: four 32×32→64 products (vpmuludq), no wrapping step.
template <std::size_t W>
[[gnu::always_inline]] inline void mulhi(vu<W>& r, const vu<W>& a, const vu<W>& b) noexcept {
  if constexpr (W == 1) {
    r = static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64);
  } else {
    constexpr std::uint64_t m32 = 0xffffffffU;
    const vu<W> a0 = a & m32, a1 = a >> 32, b0 = b & m32, b1 = b >> 32;
    const vu<W> t = a1 * b0 + ((a0 * b0) >> 32);  // < 2^64
    const vu<W> w = (t & m32) + a0 * b1;          // < 2^64
    r = a1 * b1 + (t >> 32) + (w >> 32);
  }
}

/// `r = low 64 bits of a * b` where `b < 2^32` (two 32×32→64 products on vectors).
template <std::size_t W>
[[gnu::always_inline]] inline void mul_u32(vu<W>& r, const vu<W>& a, const vu<W>& b32) noexcept {
  if constexpr (W == 1) {
    r = a * b32;
  } else {
    constexpr std::uint64_t m32 = 0xffffffffU;
    r = (a & m32) * b32 + (((a >> 32) * b32) << 32);
  }
}

/// `r = v >> sh` with int64 lanes (arithmetic shift, sh < 64).
template <std::size_t W>
[[gnu::always_inline]] inline void sar(vu<W>& r, const vu<W>& v, unsigned sh) noexcept {
  if constexpr (W == 1) {
    r = static_cast<std::uint64_t>(static_cast<std::int64_t>(v) >> sh);
  } else {
    // Logical shift, then sign extension from bit 63 − sh (AVX2 has no vpsraq).
    const std::uint64_t sign = (std::uint64_t{1} << 63) >> sh;
    r = ((v >> sh) ^ sign) - sign;
  }
}

}  // namespace tsync::detail
