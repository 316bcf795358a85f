#pragma once
/// \file
/// Implementation detail of `tsync/correct/batch.hpp`: the in-region block
/// kernels of the batch correction in the copies of `tsync/detail/simd.hpp`
/// (AVX-512, AVX2, baseline), chosen at run time. Each is one of the exact
/// region formulas of `correct::region_kernel` / the cursor (see
/// `tsync/correct/cursor.hpp`), so every copy gives the table's result bit for bit.

#include <cstddef>
#include <cstdint>

#include "tsync/core/config.hpp"
#include "tsync/detail/simd.hpp"

namespace tsync::inline TSYNC_ABI::detail {

/// Which formula a block takes, x = t − anchor:
/// - `bits64`: hbase + x + ((int64)(m64 * x) >> sh)           (cursor's 64-bit kernel)
/// - `short_form`: hbase + q * x + hi(mc * x)                (exact for short-form regions)
/// - `long_form`: e = hi(m * x), e += [(r * x − e * den) >= den]; hbase + q * x + e
enum class region_form : unsigned char { bits64, short_form, long_form };

/// The words of one region's formulas and of its fast range [lo, lo + span]
/// (len64 = 0: no 64-bit kernel; else it covers x = t − anchor < len64, and lo == anchor).
struct region_words {
  std::uint64_t anchor, hbase, q, r, den, m, mc, m64;
  unsigned sh;
  std::uint64_t lo, span, len64;
  bool short_form;
};

/// One pass over a block: `inside` when every event lies in the fast range,
/// `wide` when some event lies beyond the 64-bit kernel's range (unsigned
/// compares, OR-reduced lane-wise).
template <std::size_t W>
[[gnu::always_inline]] inline void region_scan(const std::int64_t* in, std::size_t n, const region_words& k,
                                               bool& inside, bool& wide) noexcept {
  const std::uint64_t last64 = k.len64 == 0 ? 0 : k.len64 - 1;
  const vu<W> lo = vu<W>{} + k.lo, span = vu<W>{} + k.span, len = vu<W>{} + last64;
  vu<W> out{}, big{};
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    vu<W> d;
    vload<W>(d, in + i);
    d -= lo;
    add_if_greater<W>(out, d, span);  // counts (a block has far fewer than 2^64 events)
    add_if_greater<W>(big, d, len);
  }
  std::uint64_t o = 0, b = 0;
  if constexpr (W == 1) {
    o = out;
    b = big;
  } else {
    for (std::size_t j = 0; j < W; ++j) {
      o |= out[j];
      b |= big[j];
    }
  }
  for (; i < n; ++i) {
    const std::uint64_t d = static_cast<std::uint64_t>(in[i]) - k.lo;
    o |= static_cast<std::uint64_t>(d > k.span);
    b |= static_cast<std::uint64_t>(d > last64);
  }
  inside = o == 0;
  wide = k.len64 == 0 || b != 0;
}

// QK: 0 when q == 0, 1 when q == 1, 2 otherwise (q near 1 is the rule: a
// slope just below 1 has q == 0, just above q == 1).
template <std::size_t W, region_form F, int QK>
[[gnu::always_inline]] inline std::size_t region_lanes(const std::int64_t* in, std::int64_t* out, std::size_t i,
                                                       std::size_t n, const region_words& k) noexcept {
  const vu<W> anchor = vu<W>{} + k.anchor, hbase = vu<W>{} + k.hbase, q = vu<W>{} + k.q, r = vu<W>{} + k.r;
  const vu<W> den1 = vu<W>{} + (k.den - 1), m = vu<W>{} + k.m, mc = vu<W>{} + k.mc, m64 = vu<W>{} + k.m64;
  for (; i + W <= n; i += W) {
    vu<W> x, y;
    vload<W>(x, in + i);
    x -= anchor;
    if constexpr (F == region_form::bits64) {
      sar<W>(y, m64 * x, k.sh);
      y += hbase + x;
    } else {
      if constexpr (F == region_form::short_form) {
        mulhi<W>(y, mc, x);
      } else {
        mulhi<W>(y, m, x);
        add_if_greater<W>(y, r * x - y * (den1 + 1), den1);  // [rem >= den]
      }
      if constexpr (QK == 1) y += x;
      if constexpr (QK == 2) y += q * x;
      y += hbase;
    }
    vstore<W>(out + i, y);
  }
  return i;
}

template <std::size_t W, region_form F, int QK>
[[gnu::always_inline]] inline void region_run(const std::int64_t* in, std::int64_t* out, std::size_t n,
                                              const region_words& k) noexcept {
  region_lanes<1, F, QK>(in, out, region_lanes<W, F, QK>(in, out, 0, n, k), n, k);
}

template <std::size_t W>
[[gnu::always_inline]] inline void region_form_run(region_form f, const std::int64_t* in, std::int64_t* out,
                                                   std::size_t n, const region_words& k) noexcept {
  const int qk = k.q == 0 ? 0 : k.q == 1 ? 1 : 2;
  switch (f) {
    case region_form::bits64: return region_run<W, region_form::bits64, 1>(in, out, n, k);
    case region_form::short_form:
      if (qk == 0) return region_run<W, region_form::short_form, 0>(in, out, n, k);
      if (qk == 1) return region_run<W, region_form::short_form, 1>(in, out, n, k);
      return region_run<W, region_form::short_form, 2>(in, out, n, k);
    case region_form::long_form: break;
  }
  if (qk == 0) return region_run<W, region_form::long_form, 0>(in, out, n, k);
  if (qk == 1) return region_run<W, region_form::long_form, 1>(in, out, n, k);
  region_run<W, region_form::long_form, 2>(in, out, n, k);
}

template <std::size_t W>
[[gnu::always_inline]] inline bool region_dispatch(const std::int64_t* in, std::int64_t* out, std::size_t n,
                                                   const region_words& k) noexcept {
  bool inside = false, wide = true;
  region_scan<W>(in, n, k, inside, wide);
  if (!inside) return false;
  const region_form f = !wide ? region_form::bits64
                        : k.short_form ? region_form::short_form
                                       : region_form::long_form;
  region_form_run<W>(f, in, out, n, k);
  return true;
}

inline bool region_block_baseline(const std::int64_t* in, std::int64_t* out, std::size_t n,
                                  const region_words& k) noexcept {
  return region_dispatch<1>(in, out, n, k);
}
#if TSYNC_SIMD_X86
[[gnu::target("avx2")]] inline bool region_block_avx2(const std::int64_t* in, std::int64_t* out, std::size_t n,
                                                      const region_words& k) noexcept {
  return region_dispatch<4>(in, out, n, k);
}
[[gnu::target("avx512f,avx512dq")]] inline bool region_block_avx512(const std::int64_t* in, std::int64_t* out,
                                                                    std::size_t n, const region_words& k) noexcept {
  return region_dispatch<8>(in, out, n, k);
}
#endif

/// One block of `n` events with the copy `which` (which the CPU must run):
/// false, writing nothing, unless every event lies in the region's fast range;
/// else the block is corrected (with the 64-bit kernel when it covers the
/// block). `in` and `out` may be equal.
inline bool region_block(isa which, const std::int64_t* in, std::int64_t* out, std::size_t n,
                         const region_words& k) noexcept {
#if TSYNC_SIMD_X86
  if (which == isa::avx512) return region_block_avx512(in, out, n, k);
  if (which == isa::avx2) return region_block_avx2(in, out, n, k);
#endif
  (void)which;
  return region_block_baseline(in, out, n, k);
}

}  // namespace tsync::detail
