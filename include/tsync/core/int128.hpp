#pragma once
/// \file
/// 128-bit helpers and checked 64-bit arithmetic.
///
/// Every 64-bit product in tsync goes through these helpers so that no
/// intermediate can wrap silently.

#include <cstdint>
#include <limits>
#include <optional>
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI {

__extension__ using u128 = unsigned __int128;  ///< unsigned 128-bit integer
__extension__ using i128 = __int128;           ///< signed 128-bit integer

/// `floor(a * b / 2^shift)` truncated to its low 64 bits, exactly as the
/// kernel's `mul_u64_u64_shr`. `shift` must be at most 127 (callers pass <= 63).
[[nodiscard]] constexpr std::uint64_t mul_u64_u64_shr(std::uint64_t a, std::uint64_t b,
                                                      unsigned shift) noexcept {
  return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> (shift & 127u));
}

/// Sign-magnitude `(a * b) >> shift` as the kernel's `mul_s64_u64_shr`: the
/// magnitude is floored, so the result rounds toward zero (T15: -7 x 1.5 -> -10).
/// The result is truncated to 64 bits (two's complement), as in the kernel.
[[nodiscard]] constexpr std::uint64_t mul_s64_u64_shr(std::int64_t a, std::uint64_t b,
                                                      unsigned shift) noexcept {
  const std::uint64_t mag = a < 0 ? (~static_cast<std::uint64_t>(a) + 1u) : static_cast<std::uint64_t>(a);
  const std::uint64_t r = mul_u64_u64_shr(mag, b, shift);
  return a < 0 ? (~r + 1u) : r;
}

/// `floor(a * mult / 2^shift)` for a 32-bit multiplier (`mul_u64_u32_shr`).
[[nodiscard]] constexpr std::uint64_t mul_u64_u32_shr(std::uint64_t a, std::uint32_t mult,
                                                      unsigned shift) noexcept {
  return mul_u64_u64_shr(a, mult, shift);
}

/// Checked signed addition: empty on overflow.
[[nodiscard]] constexpr std::optional<std::int64_t> checked_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r{};
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// Checked signed subtraction: empty on overflow.
[[nodiscard]] constexpr std::optional<std::int64_t> checked_sub(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r{};
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// Checked signed multiplication: empty on overflow.
[[nodiscard]] constexpr std::optional<std::int64_t> checked_mul(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r{};
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// Checked unsigned addition: empty on overflow.
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// Checked unsigned subtraction: empty on underflow.
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_sub(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// Checked unsigned multiplication: empty on overflow.
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

/// Narrow a signed 128-bit value to int64: empty when it does not fit.
[[nodiscard]] constexpr std::optional<std::int64_t> narrow_i64(i128 v) noexcept {
  if (v < static_cast<i128>(std::numeric_limits<std::int64_t>::min()) ||
      v > static_cast<i128>(std::numeric_limits<std::int64_t>::max()))
    return std::nullopt;
  return static_cast<std::int64_t>(v);
}
/// Narrow an unsigned 128-bit value to uint64: empty when it does not fit.
[[nodiscard]] constexpr std::optional<std::uint64_t> narrow_u64(u128 v) noexcept {
  if (v >> 64) return std::nullopt;
  return static_cast<std::uint64_t>(v);
}

/// `a + b` modulo 2^64, for code whose wrap is the specification (reproducing
/// another program's 64-bit arithmetic bit for bit). The builtin states the
/// wrap, so `-fsanitize=unsigned-integer-overflow` does not report it.
[[nodiscard]] constexpr std::uint64_t wrapping_add(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  static_cast<void>(__builtin_add_overflow(a, b, &r));
  return r;
}
/// `a - b` modulo 2^64 (see `wrapping_add`).
[[nodiscard]] constexpr std::uint64_t wrapping_sub(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  static_cast<void>(__builtin_sub_overflow(a, b, &r));
  return r;
}
/// `a * b` modulo 2^64 (see `wrapping_add`).
[[nodiscard]] constexpr std::uint64_t wrapping_mul(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  static_cast<void>(__builtin_mul_overflow(a, b, &r));
  return r;
}

/// Floor division of signed 128-bit values (rounds toward minus infinity). `d != 0`.
[[nodiscard]] constexpr i128 floor_div(i128 n, i128 d) noexcept {
  i128 q = n / d;
  if ((n % d != 0) && ((n < 0) != (d < 0))) --q;
  return q;
}
/// Ceiling division of signed 128-bit values (rounds toward plus infinity). `d != 0`.
[[nodiscard]] constexpr i128 ceil_div(i128 n, i128 d) noexcept {
  i128 q = n / d;
  if ((n % d != 0) && ((n < 0) == (d < 0))) ++q;
  return q;
}

/// Two's complement reinterpretation helpers (well defined in C++20).
[[nodiscard]] constexpr std::uint64_t to_u64_bits(std::int64_t v) noexcept { return static_cast<std::uint64_t>(v); }
[[nodiscard]] constexpr std::int64_t to_i64_bits(std::uint64_t v) noexcept { return static_cast<std::int64_t>(v); }

}  // namespace tsync
