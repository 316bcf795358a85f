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

#if TSYNC_SIMD_X86 && !defined(__clang__)
/// 1 when `mul32` uses GCC's vpmuludq builtins.
#define TSYNC_SIMD_PMULUDQ 1
using v8i32 [[gnu::vector_size(32)]] = int;
using v16i32 [[gnu::vector_size(64)]] = int;
using v8i64 [[gnu::vector_size(64)]] = long long;
// GCC declares the builtins of an ISA the translation unit is not compiled for
// only once a target attribute names it: these two declarations (never
// defined, never called) make the vpmuludq builtins visible to `mul32`.
[[gnu::target("avx2")]] void declare_avx2_builtins() noexcept;
[[gnu::target("avx512f")]] void declare_avx512_builtins() noexcept;
#else
#define TSYNC_SIMD_PMULUDQ 0
#endif

/// `r = lo32(a) * lo32(b)` lane-wise: the full 64-bit products of the low
/// halves (the upper halves of `a` and `b` are ignored). With GCC on x86-64,
/// one vpmuludq through the builtin of the lane width (GCC 12 turns the generic
/// `(a & m32) * (b & m32)` into vpmullq, a 64×64 product several times slower);
/// the builtin is expanded only inside the AVX2 and AVX-512 copies, where
/// `mul32<4>` and `mul32<8>` are inlined. Elsewhere the generic form (clang
/// maps it to vpmuludq itself).
#if TSYNC_SIMD_PMULUDQ
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
template <std::size_t W>
[[gnu::always_inline]] inline void mul32(vu<W>& r, const vu<W>& a, const vu<W>& b) noexcept {
#if TSYNC_SIMD_PMULUDQ
  if constexpr (W == 4) {
    r = reinterpret_cast<vu<4>>(__builtin_ia32_pmuludq256(reinterpret_cast<v8i32>(a), reinterpret_cast<v8i32>(b)));
    return;
  } else if constexpr (W == 8) {
    r = reinterpret_cast<vu<8>>(__builtin_ia32_pmuludq512_mask(reinterpret_cast<v16i32>(a), reinterpret_cast<v16i32>(b),
                                                               v8i64{}, static_cast<unsigned char>(0xff)));
    return;
  }
#endif
  constexpr std::uint64_t m32 = 0xffffffffU;
  r = (a & m32) * (b & m32);
}
#if TSYNC_SIMD_PMULUDQ
#pragma GCC diagnostic pop
#endif

/// `r = high 64 bits of the unsigned product a * b`, exact. Scalar: one
/// 64×64→128 product; vectors: four 32×32→64 products (vpmuludq), no wrapping step.
template <std::size_t W>
[[gnu::always_inline]] inline void mulhi(vu<W>& r, const vu<W>& a, const vu<W>& b) noexcept {
  if constexpr (W == 1) {
    r = static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64);
  } else {
    constexpr std::uint64_t m32 = 0xffffffffU;
    const vu<W> a1 = a >> 32, b1 = b >> 32;
    vu<W> ll, hl, lh, hh;
    mul32<W>(ll, a, b);
    mul32<W>(hl, a1, b);
    mul32<W>(lh, a, b1);
    mul32<W>(hh, a1, b1);
    const vu<W> t = hl + (ll >> 32);     // < 2^64
    const vu<W> w = (t & m32) + lh;      // < 2^64
    r = hh + (t >> 32) + (w >> 32);
  }
}

/// `r = low 64 bits of a * b` where `b < 2^32` (two 32×32→64 products on vectors).
template <std::size_t W>
[[gnu::always_inline]] inline void mul_u32(vu<W>& r, const vu<W>& a, const vu<W>& b32) noexcept {
  if constexpr (W == 1) {
    r = a * b32;
  } else {
    vu<W> lo, hi;
    mul32<W>(lo, a, b32);
    mul32<W>(hi, a >> 32, b32);
    r = lo + (hi << 32);
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
