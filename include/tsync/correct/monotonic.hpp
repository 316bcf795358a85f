#pragma once
/// \file
/// Monotonicity check of corrected per-CPU streams: a per-CPU stream of host
/// times must never go backward. Violations are a quality diagnostic (a wrong
/// offset, a missed offset change, a bad sync sample), reported as a count, the
/// first index and the sizes of the backward steps.

#include <cstddef>
#include <cstdint>
#include <span>
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::correct {

/// What a monotonicity check found. A violation is an event whose time is
/// strictly below the time of the event just before it; its size is that
/// difference (previous − current, > 0).
struct monotonicity_report {
  std::size_t events = 0;          ///< events checked
  std::size_t violations = 0;      ///< number of backward steps
  std::size_t first_index = 0;     ///< index of the first event that went backward (valid when violations > 0)
  std::uint64_t first_size = 0;    ///< size of that first backward step
  std::uint64_t max_size = 0;      ///< largest backward step
  std::size_t max_index = 0;       ///< index of the largest backward step
  /// True when the stream never goes backward.
  [[nodiscard]] constexpr bool ok() const noexcept { return violations == 0; }
  friend constexpr bool operator==(const monotonicity_report&, const monotonicity_report&) = default;
};

/// Streaming form: feed events one at a time (billions of events, O(1) memory).
class monotonicity_checker {
 public:
  /// Account for the next event of the stream.
  constexpr void push(std::int64_t v) noexcept {
    const std::size_t i = r_.events++;
    if (i > 0 && v < prev_) {
      // prev_ − v as an unsigned difference: exact for any two int64 values.
      const std::uint64_t size = static_cast<std::uint64_t>(prev_) - static_cast<std::uint64_t>(v);
      if (r_.violations == 0) {
        r_.first_index = i;
        r_.first_size = size;
      }
      if (size > r_.max_size) {
        r_.max_size = size;
        r_.max_index = i;
      }
      ++r_.violations;
    }
    prev_ = v;
  }
  /// The report so far.
  [[nodiscard]] constexpr const monotonicity_report& report() const noexcept { return r_; }

 private:
  monotonicity_report r_{};
  std::int64_t prev_ = 0;
};

/// Check a whole stream.
[[nodiscard]] constexpr monotonicity_report check_monotonic(std::span<const std::int64_t> stream) noexcept {
  monotonicity_checker c;
  for (std::int64_t v : stream) c.push(v);
  return c.report();
}

}  // namespace tsync::correct
