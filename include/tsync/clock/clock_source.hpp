#pragma once
/// \file
/// The clock_source concept: anything with a member `now()` that returns the
/// current reading of one clock as a signed 64-bit integer (nanoseconds or raw
/// ticks, as the source documents), plus a `name()`.
///
/// | expression | returns | meaning |
/// |---|---|---|
/// | `c.now()` | `std::int64_t` | current reading; must not fail (sources that can fail check at construction) |
/// | `c.name()` | convertible to `std::string_view` | a stable name, e.g. "mono_raw" |

#include <concepts>
#include <cstdint>
#include <string_view>
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::clock {

template <class C>
concept clock_source = requires(C& c) {
  { c.now() } -> std::same_as<std::int64_t>;
  { c.name() } -> std::convertible_to<std::string_view>;
};

}  // namespace tsync::clock
