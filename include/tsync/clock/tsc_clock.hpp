#pragma once
/// \file
/// The x86-64 time-stamp counter as a clock source (raw cycles, the same
/// counter the ftrace `x86-tsc` clock records).
///
/// `rdtsc` alone is not ordered: the CPU may execute it before earlier loads
/// complete or after later instructions start, which blurs a probe's stamp by
/// tens of cycles. Two ordered forms are offered:
/// * `tsc_read::lfence_rdtsc`: `lfence; rdtsc` — lfence waits for all earlier
///   instructions to complete locally, so the counter is read after them;
/// * `tsc_read::rdtscp_lfence`: `rdtscp; lfence` — rdtscp waits for earlier
///   instructions, the trailing lfence keeps later ones from starting before the
///   read; rdtscp also returns `IA32_TSC_AUX` (Linux stores the CPU number there).
///
/// Everywhere else (not x86-64) the type still exists so that code compiles,
/// but `tsc_clock::open()` returns `errc::unsupported`.

#include <cstdint>
#include <string_view>
#include <system_error>

#include "tsync/clock/clock_source.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TSYNC_HAVE_TSC 1
#include <cpuid.h>
#include "tsync/core/config.hpp"
#else
#define TSYNC_HAVE_TSC 0
#endif

namespace tsync::inline TSYNC_ABI::clock {

/// How the counter is read (see the file comment).
enum class tsc_read : std::uint8_t { lfence_rdtsc, rdtscp_lfence };

/// What CPUID says about the TSC.
struct tsc_features {
  bool rdtscp = false;    ///< CPUID 0x80000001 EDX bit 27
  bool invariant = false; ///< CPUID 0x80000007 EDX bit 8: constant rate in all P/C-states
};

#if TSYNC_HAVE_TSC
/// `lfence; rdtsc`.
[[nodiscard]] inline std::uint64_t rdtsc_ordered() noexcept {
  std::uint32_t lo = 0, hi = 0;
  __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
/// `rdtscp; lfence`; `aux` receives IA32_TSC_AUX.
[[nodiscard]] inline std::uint64_t rdtscp_ordered(std::uint32_t& aux) noexcept {
  std::uint32_t lo = 0, hi = 0, c = 0;
  __asm__ __volatile__("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi), "=c"(c) : : "memory");
  aux = c;
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
/// Query CPUID for the TSC features.
[[nodiscard]] inline tsc_features query_tsc_features() noexcept {
  tsc_features f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  // The `__cpuid` instruction macro (unsigned outputs), not __get_cpuid_max/__get_cpuid: clang 14's
  // __get_cpuid_max returns the highest extended leaf (0x8000'00xx) as `int`, a conversion that
  // changes the value inside the header. CPUID exists on every x86-64 CPU.
  __cpuid(0x80000000u, a, b, c, d);
  const unsigned max_ext = a;
  if (max_ext >= 0x80000001u) {
    __cpuid(0x80000001u, a, b, c, d);
    f.rdtscp = ((d >> 27) & 1u) != 0;
  }
  if (max_ext >= 0x80000007u) {
    __cpuid(0x80000007u, a, b, c, d);
    f.invariant = ((d >> 8) & 1u) != 0;
  }
  return f;
}
#else
[[nodiscard]] inline tsc_features query_tsc_features() noexcept { return {}; }
#endif

/// The TSC of the machine of domain `D`, in raw cycles. `now()` returns a
/// `ticks<D>`; `now_raw()` the 64-bit counter reinterpreted as int64 (a TSC
/// reaches 2^63 only after ~97 years at 3 GHz). `tsc_clock` is the host's; code
/// running in a guest reads `basic_tsc_clock<guest>`.
template <clock_domain D> class basic_tsc_clock {
 public:
  using domain = D;
  /// A TSC clock read with `how`. Errors: `errc::unsupported` off x86-64, or
  /// for `rdtscp_lfence` on a CPU without rdtscp.
  [[nodiscard]] static expected<basic_tsc_clock, std::error_code> open(tsc_read how = tsc_read::lfence_rdtsc) noexcept {
#if TSYNC_HAVE_TSC
    const tsc_features f = query_tsc_features();
    if (how == tsc_read::rdtscp_lfence && !f.rdtscp) return unexpected(make_error_code(errc::unsupported));
    return basic_tsc_clock(how, f);
#else
    (void)how;
    return unexpected(make_error_code(errc::unsupported));
#endif
  }
  /// The counter.
  [[nodiscard]] ticks<D> now() const noexcept { return ticks<D>(static_cast<std::uint64_t>(now_raw())); }
  /// The counter as a bare integer (the probe exchange's stamp).
  [[nodiscard]] std::int64_t now_raw() const noexcept {
#if TSYNC_HAVE_TSC
    if (how_ == tsc_read::rdtscp_lfence) {
      std::uint32_t aux = 0;
      return static_cast<std::int64_t>(rdtscp_ordered(aux));
    }
    return static_cast<std::int64_t>(rdtsc_ordered());
#else
    return 0;  // unreachable: open() refuses
#endif
  }
  /// Read the counter and the CPU it was read on (from IA32_TSC_AUX, which
  /// Linux sets to `node << 12 | cpu`); `cpu` is left unchanged with lfence_rdtsc.
  [[nodiscard]] ticks<D> now(std::uint32_t& cpu) const noexcept {
#if TSYNC_HAVE_TSC
    if (how_ == tsc_read::rdtscp_lfence) {
      std::uint32_t aux = 0;
      const auto v = rdtscp_ordered(aux);
      cpu = aux & 0xfffu;
      return ticks<D>(v);
    }
#endif
    (void)cpu;
    return now();
  }
  [[nodiscard]] std::string_view name() const noexcept { return "x86-tsc"; }
  [[nodiscard]] tsc_read method() const noexcept { return how_; }
  [[nodiscard]] const tsc_features& features() const noexcept { return features_; }

 private:
  basic_tsc_clock(tsc_read how, tsc_features f) noexcept : how_(how), features_(f) {}
  tsc_read how_;
  tsc_features features_;
};

/// The host's TSC.
using tsc_clock = basic_tsc_clock<host>;

static_assert(clock_source<tsc_clock>);

}  // namespace tsync::clock
