#pragma once
/// \file
/// The clock_source concept: a clock of one domain (`C::domain`, e.g. `host`
/// or `guest`: the machine the code reads it on) whose `now()` returns a typed
/// reading of that domain, plus a raw accessor for the probe exchange and a
/// `name()`.
///
/// | expression | returns | meaning |
/// |---|---|---|
/// | `C::domain` | a `clock_domain` | whose clock this is (`host`, `guest`, ...) |
/// | `c.now()` | `domain_time<C::domain>` (ns clocks) or `ticks<C::domain>` (counters) | current reading; must not fail (sources that can fail check at construction) |
/// | `c.now_raw()` | `std::int64_t` | the same reading as a bare integer (ns or ticks); the probe exchange's stamps, whose domain the session decides at run time |
/// | `c.name()` | convertible to `std::string_view` | a stable name, e.g. "mono_raw" |
///
/// A guest reading cannot be used as a host time: `posix_clock` (host) and
/// `basic_posix_clock<guest>` return different types.

#include <concepts>
#include <cstdint>
#include <string_view>
#include <utility>
#include "tsync/core/config.hpp"
#include "tsync/core/time.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// A typed reading of domain D: a calibrated time or a raw counter value.
template <class R, class D>
concept reading_of = clock_domain<D> && (std::same_as<R, domain_time<D>> || std::same_as<R, ticks<D>>);

template <class C>
concept clock_source = clock_domain<typename C::domain> && requires(C& c) {
  { c.now() } -> reading_of<typename C::domain>;
  { c.now_raw() } -> std::same_as<std::int64_t>;
  { c.name() } -> std::convertible_to<std::string_view>;
};

namespace detail {
template <class R> struct reading_traits;
template <clock_domain D> struct reading_traits<domain_time<D>> {
  template <clock_domain E> using rebind = domain_time<E>;
  static constexpr domain_time<D> from_raw(std::int64_t v) noexcept { return at_ns<D>(v); }
};
template <clock_domain D> struct reading_traits<ticks<D>> {
  template <clock_domain E> using rebind = ticks<E>;
  static constexpr ticks<D> from_raw(std::int64_t v) noexcept { return ticks<D>(static_cast<std::uint64_t>(v)); }
};
}  // namespace detail

/// The typed reading of a clock source `C`.
template <class C> using reading_t = decltype(std::declval<C&>().now());

/// The same kind of reading as `R` (time or counter), in domain `D`.
template <class R, clock_domain D> using rebind_reading = typename detail::reading_traits<R>::template rebind<D>;

/// The typed reading `R` (a `domain_time<D>` or a `ticks<D>`) of a raw value.
template <class R> [[nodiscard]] constexpr R reading_from_raw(std::int64_t v) noexcept {
  return detail::reading_traits<R>::from_raw(v);
}

}  // namespace tsync::clock
