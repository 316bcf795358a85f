#pragma once
/// \file
/// Typed time: domain tags, raw counters and calibrated nanoseconds that carry
/// their clock domain in the type, and offsets that carry their direction.
///
/// * `ticks<D>`: a raw counter value of domain D (a TSC, say). It wraps modulo
///   2^64 like the hardware; the difference of two ticks is a signed
///   `tick_delta<D>` computed modulo 2^64 (correct while the true distance is
///   below 2^63).
/// * `domain_time<D>`: a calibrated time in nanoseconds, a
///   `std::chrono::time_point` whose clock is the pseudo-clock `domain_clock<D>`.
///   Subtracting a guest time from a host time does not compile.
/// * `offset<From, To>`: `To − From` in nanoseconds; it maps a `domain_time<From>`
///   to a `domain_time<To>`. tsync's one direction is guest→host, so the usual
///   spelling is `offset<guest, host>` (= host − guest).
///
/// Crossing domains happens only through named functions (`apply`, `to_host`,
/// `to_guest`) that take the offset whose direction matches.

#include <chrono>
#include <compare>
#include <concepts>
#include <cstdint>
#include <type_traits>
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI {

/// A clock domain tag: any type with a `static constexpr const char* name`.
template <class D>
concept clock_domain = std::is_empty_v<D> && requires {
  { D::name } -> std::convertible_to<const char*>;
};

/// The host's clock (the reference of every sync model).
struct host { static constexpr const char* name = "host"; };
/// A guest's clock.
struct guest { static constexpr const char* name = "guest"; };
/// A nested guest's clock (L2), for nested virtualization.
struct nested_guest { static constexpr const char* name = "nested_guest"; };

/// Define a user domain: `TSYNC_DEFINE_DOMAIN(my_board);`
#define TSYNC_DEFINE_DOMAIN(NAME) \
  struct NAME { static constexpr const char* name = #NAME; }

template <clock_domain D> class ticks;

/// Signed difference of two counter values of one domain.
template <clock_domain D> class tick_delta {
 public:
  using domain = D;
  constexpr tick_delta() noexcept = default;
  constexpr explicit tick_delta(std::int64_t v) noexcept : v_(v) {}
  [[nodiscard]] constexpr std::int64_t count() const noexcept { return v_; }
  friend constexpr auto operator<=>(tick_delta, tick_delta) noexcept = default;
  /// Wrapping negation (like the hardware counter arithmetic).
  constexpr tick_delta operator-() const noexcept {
    return tick_delta(static_cast<std::int64_t>(0u - static_cast<std::uint64_t>(v_)));
  }

 private:
  std::int64_t v_ = 0;
};

/// A raw counter value of domain D; wraps modulo 2^64.
template <clock_domain D> class ticks {
 public:
  using domain = D;
  constexpr ticks() noexcept = default;
  constexpr explicit ticks(std::uint64_t v) noexcept : v_(v) {}
  [[nodiscard]] constexpr std::uint64_t count() const noexcept { return v_; }
  /// Equality only: a wrapping counter has no meaningful global order; compare
  /// through a difference instead.
  friend constexpr bool operator==(ticks, ticks) noexcept = default;
  /// Signed difference modulo 2^64.
  friend constexpr tick_delta<D> operator-(ticks a, ticks b) noexcept {
    return tick_delta<D>(static_cast<std::int64_t>(a.v_ - b.v_));
  }
  friend constexpr ticks operator+(ticks a, tick_delta<D> d) noexcept {
    return ticks(a.v_ + static_cast<std::uint64_t>(d.count()));
  }
  friend constexpr ticks operator-(ticks a, tick_delta<D> d) noexcept {
    return ticks(a.v_ - static_cast<std::uint64_t>(d.count()));
  }
  /// True when `a` is before `b` in wrapping order (their distance below 2^63).
  [[nodiscard]] friend constexpr bool before(ticks a, ticks b) noexcept { return (a - b).count() < 0; }

 private:
  std::uint64_t v_ = 0;
};

/// The pseudo-clock of a domain: a chrono Clock type used only as a tag of
/// `std::chrono::time_point` (it has no `now()`; clock sources live in clock/).
template <clock_domain D> struct domain_clock {
  using domain = D;
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<domain_clock, duration>;
  static constexpr bool is_steady = false;
};

/// A calibrated time of domain D in nanoseconds.
template <clock_domain D> using domain_time = std::chrono::time_point<domain_clock<D>, std::chrono::nanoseconds>;

/// Shorthand: a domain time from a nanosecond count.
template <clock_domain D> [[nodiscard]] constexpr domain_time<D> at_ns(std::int64_t ns) noexcept {
  return domain_time<D>(std::chrono::nanoseconds(ns));
}

/// The raw nanosecond count of a domain time (leaving the typed world: name
/// the domain at the call site, e.g. `raw_ns(h)` where `h` is a host time).
template <clock_domain D> [[nodiscard]] constexpr std::int64_t raw_ns(domain_time<D> t) noexcept {
  return t.time_since_epoch().count();
}

/// A closed interval `[lo, hi]` of times of domain D.
template <clock_domain D> struct time_interval {
  domain_time<D> lo{};
  domain_time<D> hi{};
  [[nodiscard]] constexpr bool contains(domain_time<D> t) const noexcept { return lo <= t && t <= hi; }
  [[nodiscard]] constexpr std::chrono::nanoseconds width() const noexcept { return hi - lo; }
  friend constexpr bool operator==(const time_interval&, const time_interval&) = default;
};

/// An offset that maps times of `From` to times of `To`: value = To − From.
template <clock_domain From, clock_domain To> class offset {
 public:
  using from_domain = From;
  using to_domain = To;
  constexpr offset() noexcept = default;
  constexpr explicit offset(std::chrono::nanoseconds v) noexcept : v_(v) {}
  /// An offset of `ns` nanoseconds (or counter ticks, where the domain counts ticks).
  constexpr explicit offset(std::int64_t ns) noexcept : v_(ns) {}
  /// The offset that makes `to` and `from` the same instant.
  [[nodiscard]] static constexpr offset between(domain_time<From> from, domain_time<To> to) noexcept {
    return offset(to.time_since_epoch() - from.time_since_epoch());
  }
  [[nodiscard]] constexpr std::chrono::nanoseconds value() const noexcept { return v_; }
  /// The raw count of `value()`.
  [[nodiscard]] constexpr std::int64_t count() const noexcept { return v_.count(); }
  /// Map a time of `From` to `To`.
  [[nodiscard]] constexpr domain_time<To> apply(domain_time<From> t) const noexcept {
    return domain_time<To>(t.time_since_epoch() + v_);
  }
  /// The reverse direction (To → From).
  [[nodiscard]] constexpr offset<To, From> inverse() const noexcept { return offset<To, From>(-v_); }
  friend constexpr auto operator<=>(offset, offset) noexcept = default;

 private:
  std::chrono::nanoseconds v_{0};
};

/// tsync's canonical direction: guest → host (value = host − guest).
using guest_to_host = offset<guest, host>;

/// Map a guest time to host time with a guest→host offset.
template <clock_domain G, clock_domain H>
[[nodiscard]] constexpr domain_time<H> to_host(domain_time<G> t, offset<G, H> o) noexcept {
  return o.apply(t);
}
/// Map a host time to guest time with a guest→host offset (applied backwards).
template <clock_domain G, clock_domain H>
[[nodiscard]] constexpr domain_time<G> to_guest(domain_time<H> t, offset<G, H> o) noexcept {
  return o.inverse().apply(t);
}

/// Compose two offsets: (A→B) then (B→C) gives A→C. Domains must line up.
template <clock_domain A, clock_domain B, clock_domain C>
[[nodiscard]] constexpr offset<A, C> then(offset<A, B> ab, offset<B, C> bc) noexcept {
  return offset<A, C>(ab.value() + bc.value());
}

}  // namespace tsync
