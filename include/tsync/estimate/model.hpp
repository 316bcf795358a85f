#pragma once
/// \file
/// The piecewise guest→host model every estimator returns, its evaluation
/// (`to_host`, `hard_bounds`, `stat_bounds`), its conversion to the sync table
/// of the correction engine and its JSON form.
///
/// A model is a list of segments ordered by guest time. Segment `i` covers
/// `[begin_i, begin_{i+1})`; a time before the first segment uses the first,
/// a time after the last uses the last (each segment's lines extend; hold
/// segments built by the per-burst estimators have slope 0 and hard bounds that
/// widen with `max_drift`). Within a segment:
///
///   offset(t) = fit.offset + fit.slope_q48 · (t − ref) / 2^48      (host − guest, ns)
///   host(t)   = t + offset(t)                                      (rounded to nearest)
///   hard(t)   = [t + min over `lo` lines, t + max over `hi` lines] (widened by the slope rounding)
///   stat(t)   = host(t) ± stat.half_width(t − ref)                 (when the method gives one)
///
/// Typed time: the queries (`offset_at`, `to_host`, `hard_bounds`,
/// `stat_bounds`) take a `domain_time<guest>` and answer in host time
/// (`domain_time<host>`, `time_interval<host>`) or as an `offset<guest, host>`.
/// The segments' own fields (`begin`, `end`, `ref`, the lines) are raw
/// nanosecond counts of guest time: they are the model's data, read and written
/// by the estimators and the JSON form.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// Why a segment starts where it does.
enum class boundary_cause : std::uint8_t {
  start,      ///< the first segment
  burst,      ///< a sync point of a per-burst (interpolated) model
  step,       ///< a clock step (offset or frequency) was detected here
  asymmetry,  ///< a change of one direction's minimum delay; the clock map is continuous
  gap,        ///< no data: the truth lies in the union of the neighbours' bounds
  nonlinear,  ///< the affine fit no longer holds (drift wander); the map is continuous
  hold,       ///< before the first or after the last sync point: the offset is held
};

/// Stable name of a cause (used in JSON).
[[nodiscard]] constexpr std::string_view to_string(boundary_cause c) noexcept {
  switch (c) {
    case boundary_cause::start: return "start";
    case boundary_cause::burst: return "burst";
    case boundary_cause::step: return "step";
    case boundary_cause::asymmetry: return "asymmetry";
    case boundary_cause::gap: return "gap";
    case boundary_cause::nonlinear: return "nonlinear";
    case boundary_cause::hold: return "hold";
  }
  return "unknown";
}
/// Parse a cause name.
[[nodiscard]] constexpr std::optional<boundary_cause> cause_from_string(std::string_view s) noexcept {
  for (auto c : {boundary_cause::start, boundary_cause::burst, boundary_cause::step, boundary_cause::asymmetry,
                 boundary_cause::gap, boundary_cause::nonlinear, boundary_cause::hold})
    if (to_string(c) == s) return c;
  return std::nullopt;
}

/// Diagnostics of one segment.
struct segment_diagnostics {
  fit_stats stats{};
  boundary_cause cause = boundary_cause::start;
  friend constexpr bool operator==(const segment_diagnostics&, const segment_diagnostics&) = default;
};

/// One piece of the model (see the file comment for the formulas).
struct segment {
  std::int64_t begin = 0;        ///< first guest time covered
  std::int64_t end = 0;          ///< informational: end of the data the segment was fitted on (exclusive)
  std::int64_t ref = 0;          ///< reference guest time of the lines
  line fit{};                    ///< point estimate of the offset
  std::vector<line> lo;          ///< hard lower bound = min of these lines (non-empty)
  std::vector<line> hi;          ///< hard upper bound = max of these lines (non-empty)
  std::optional<stat_band> stat; ///< statistical band, when the method gives one
  segment_diagnostics diag{};
  friend bool operator==(const segment&, const segment&) = default;
};

/// A piecewise guest→host model.
class model {
 public:
  std::string estimator;          ///< name of the estimator that produced it
  std::vector<segment> segments;  ///< ordered by `begin`, strictly increasing

  friend bool operator==(const model&, const model&) = default;

  /// Check the invariants (non-empty, begins strictly increasing, every
  /// segment has lower and upper bound lines, finite statistical bands).
  template <class = void>
  [[nodiscard]] expected<void, errc> check() const {
    if (segments.empty()) return unexpected(errc::empty_input);
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const auto& s = segments[i];
      if (s.lo.empty() || s.hi.empty()) return unexpected(errc::invalid_argument);
      if (i > 0 && s.begin <= segments[i - 1].begin) return unexpected(errc::unsorted_input);
      if (s.stat) {
        const auto& b = *s.stat;
        if (!std::isfinite(b.var_offset) || !std::isfinite(b.cov) || !std::isfinite(b.var_slope) ||
            !std::isfinite(b.k))
          return unexpected(errc::non_finite);
      }
    }
    return {};
  }

  /// The segment that holds guest time `g` (the first one before all, the last
  /// one after all). Requires a non-empty model.
  [[nodiscard]] const segment& segment_at(std::int64_t g) const noexcept {
    auto it = std::upper_bound(segments.begin(), segments.end(), g,
                               [](std::int64_t v, const segment& s) { return v < s.begin; });
    return it == segments.begin() ? segments.front() : *(it - 1);
  }

  /// The offset (host − guest) at guest time `gt`, rounded to nearest.
  [[nodiscard]] expected<guest_to_host, errc> offset_at(domain_time<guest> gt) const {
    if (segments.empty()) return unexpected(errc::empty_input);
    const std::int64_t g = raw_ns(gt);
    const auto& s = segment_at(g);
    auto v = narrow_i64(s.fit.value_at(static_cast<i128>(g) - s.ref));
    if (!v) return unexpected(errc::out_of_range);
    return guest_to_host(*v);
  }

  /// The host time of guest time `g`. Errors: `empty_input` for an empty
  /// model, `out_of_range` if the result does not fit in int64.
  [[nodiscard]] expected<domain_time<host>, errc> to_host(domain_time<guest> gt) const {
    if (segments.empty()) return unexpected(errc::empty_input);
    const std::int64_t g = raw_ns(gt);
    const auto& s = segment_at(g);
    auto v = narrow_i64(static_cast<i128>(g) + s.fit.value_at(static_cast<i128>(g) - s.ref));
    if (!v) return unexpected(errc::out_of_range);
    return at_ns<host>(*v);
  }

  /// The hard interval of host times for guest time `g`: every host time the
  /// data allow under the estimator's assumptions (causality, an affine clock
  /// within a segment, |drift| <= max_drift outside the data). The stored
  /// slopes are rounded to 2^-48, so the interval is widened by
  /// `1 + |t − ref| / 2^48` ns each way.
  [[nodiscard]] expected<time_interval<host>, errc> hard_bounds(domain_time<guest> gt) const {
    if (segments.empty()) return unexpected(errc::empty_input);
    const std::int64_t g = raw_ns(gt);
    const auto& s = segment_at(g);
    if (s.lo.empty() || s.hi.empty()) return unexpected(errc::invalid_argument);
    const i128 dt = static_cast<i128>(g) - s.ref;
    const i128 slack = 1 + ((dt < 0 ? -dt : dt) >> slope_frac_bits);
    i128 lo = s.lo.front().value_at(dt, line::rounding::floor);
    for (const auto& l : s.lo) lo = std::min(lo, l.value_at(dt, line::rounding::floor));
    i128 hi = s.hi.front().value_at(dt, line::rounding::ceil);
    for (const auto& l : s.hi) hi = std::max(hi, l.value_at(dt, line::rounding::ceil));
    auto a = narrow_i64(static_cast<i128>(g) + lo - slack);
    auto b = narrow_i64(static_cast<i128>(g) + hi + slack);
    if (!a || !b) return unexpected(errc::out_of_range);
    return time_interval<host>{at_ns<host>(*a), at_ns<host>(*b)};
  }

  /// The statistical interval of host times for guest time `g`, when the
  /// segment has one (empty otherwise, or if it would not fit in int64).
  [[nodiscard]] std::optional<time_interval<host>> stat_bounds(domain_time<guest> gt) const {
    if (segments.empty()) return std::nullopt;
    const std::int64_t g = raw_ns(gt);
    const auto& s = segment_at(g);
    if (!s.stat) return std::nullopt;
    auto ht = to_host(gt);
    if (!ht) return std::nullopt;
    const std::int64_t h = raw_ns(*ht);
    const double half = s.stat->half_width(static_cast<double>(static_cast<i128>(g) - s.ref));
    if (!std::isfinite(half) || half > 4e18) return std::nullopt;
    const auto w = static_cast<i128>(std::ceil(half));
    auto a = narrow_i64(static_cast<i128>(h) - w);
    auto b = narrow_i64(static_cast<i128>(h) + w);
    if (!a || !b) return std::nullopt;
    return time_interval<host>{at_ns<host>(*a), at_ns<host>(*b)};
  }

  /// Samples for the correction engine (unscaled: ratio 1, frac_bits 0), such
  /// that linear interpolation between consecutive samples reproduces the
  /// model between the first segment's begin and the last segment's end: one
  /// sample at each segment's begin and one at `next begin − 1` (or at `end − 1`
  /// for the last). Each carries the hard interval relative to its offset.
  /// Outside that range the engine's own policy (hold or extrapolate) applies.
  template <class = void>
  [[nodiscard]] std::vector<sync_sample> to_sync_table() const {
    std::vector<sync_sample> out;
    auto emit = [&](const segment& s, std::int64_t t) {
      const i128 dt = static_cast<i128>(t) - s.ref;
      auto off = narrow_i64(s.fit.value_at(dt));
      if (!off) return;
      sync_sample ss;
      ss.guest_time = at_ns<guest>(t);
      ss.offset = guest_to_host(*off);
      ss.ratio = 1;
      ss.frac_bits = 0;
      auto hb = hard_bounds(at_ns<guest>(t));
      if (hb) {
        auto lo = narrow_i64(static_cast<i128>(raw_ns(hb->lo)) - t - *off);
        auto hi = narrow_i64(static_cast<i128>(raw_ns(hb->hi)) - t - *off);
        if (lo && hi && *lo <= 0 && *hi >= 0) ss.bounds = offset_interval{*lo, *hi};
      }
      if (!out.empty() && raw_ns(out.back().guest_time) >= t) return;
      out.push_back(ss);
    };
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const auto& s = segments[i];
      if (s.begin != std::numeric_limits<std::int64_t>::min()) emit(s, s.begin);
      const std::int64_t last = i + 1 < segments.size() ? segments[i + 1].begin - 1 : std::max(s.begin, s.end - 1);
      if (last > s.begin) emit(s, last);
    }
    return out;
  }

  /// The model as JSON (see docs/estimators.md for the schema): forwards to
  /// `io::model_to_json` (io/model_json.hpp).
  template <class = void>
  [[nodiscard]] std::string to_json() const;
  /// Read a model written by `to_json`. Errors: `invalid_argument` for JSON
  /// syntax or a missing / mistyped field (`error` gets the details),
  /// `malformed_number` for a number that is not the expected kind,
  /// `non_finite` for a statistical band that is not finite, and the errors of
  /// `check()`. Forwards to `io::read_model_json` (io/model_json.hpp), whose
  /// `text_error` names the field; kept for one release.
  template <class = void>
  [[nodiscard]] static expected<model, errc> from_json(std::string_view text, text_error* error = nullptr);
};

}  // namespace tsync::estimate

// The JSON form (`to_json`, `from_json`) is defined in io/model_json.hpp,
// included here so that this header keeps offering it.
#include "tsync/io/model_json.hpp"
