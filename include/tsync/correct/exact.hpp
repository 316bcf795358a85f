#pragma once
/// \file
/// Exact integer helpers of the correction engine: `floor(a * b / c)` and
/// `ceil(a * b / c)` without any intermediate that can wrap, and the 64×64→high
/// 64 product written so that a compiler can vectorise it.
///
/// Everything here is exact integer arithmetic; no floating point is used
/// anywhere in the correction engine.

#include <cstdint>
#include <optional>

#include "tsync/core/int128.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::correct {

/// `floor(a * b / c)` computed exactly, for `c > 0`, `|b| < 2^64` and
/// `|a| < 2^126`. Empty when the exact result does not fit a signed 128-bit
/// integer (or a precondition is broken).
///
/// Method: write `a = qa * c + ra` with `0 <= ra < c` (Euclidean division), so
/// `a * b / c = qa * b + ra * b / c`. `ra * b < c * 2^64 <= 2^128` fits an
/// unsigned 128-bit product, and `qa * b` is an exact (checked) product.
[[nodiscard]] constexpr std::optional<i128> floor_muldiv(i128 a, i128 b, std::uint64_t c) noexcept {
  constexpr i128 lim = static_cast<i128>(static_cast<u128>(1) << 126);
  constexpr i128 lim_b = static_cast<i128>(static_cast<u128>(1) << 64);
  if (c == 0 || a >= lim || a <= -lim || b >= lim_b || b <= -lim_b) return std::nullopt;
  if (b < 0) {  // floor(a * b / c) == floor((-a) * (-b) / c)
    a = -a;
    b = -b;
  }
  const i128 ci = static_cast<i128>(c);
  i128 ra = a % ci;
  i128 qa = a / ci;
  if (ra < 0) {
    ra += ci;
    --qa;
  }
  const std::uint64_t ub = static_cast<std::uint64_t>(b);
  const u128 low = (static_cast<u128>(ra) * ub) / c;  // < 2^64
  i128 high{};
  if (__builtin_mul_overflow(qa, static_cast<i128>(ub), &high)) return std::nullopt;
  i128 sum{};
  if (__builtin_add_overflow(high, static_cast<i128>(low), &sum)) return std::nullopt;
  return sum;
}

/// `ceil(a * b / c)` computed exactly; same domain as `floor_muldiv`.
[[nodiscard]] constexpr std::optional<i128> ceil_muldiv(i128 a, i128 b, std::uint64_t c) noexcept {
  const auto f = floor_muldiv(-a, b, c);
  if (!f) return std::nullopt;
  return -*f;
}

/// `floor(a * b / 2^64)` for unsigned 64-bit a and b, written with 32×32→64
/// partial products only, so that the loop that calls it can be vectorised
/// (a 64×64→128 multiply has no vector form). Exact: equals
/// `(u128(a) * b) >> 64`, which the tests check.
[[nodiscard]] constexpr std::uint64_t mulhi_u64_portable(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a0 = a & 0xffffffffu;
  const std::uint64_t a1 = a >> 32;
  const std::uint64_t b0 = b & 0xffffffffu;
  const std::uint64_t b1 = b >> 32;
  const std::uint64_t p00 = a0 * b0;
  const std::uint64_t p01 = a0 * b1;
  const std::uint64_t p10 = a1 * b0;
  const std::uint64_t p11 = a1 * b1;
  const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/// `floor(a * b / 2^64)` with a native 128-bit product (scalar code).
[[nodiscard]] constexpr std::uint64_t mulhi_u64(std::uint64_t a, std::uint64_t b) noexcept {
  return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64);
}

}  // namespace tsync::correct
