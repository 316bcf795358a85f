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
#include "tsync/io/json.hpp"
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

  /// The model as JSON (see docs/estimators.md for the schema).
  [[nodiscard]] std::string to_json() const;
  /// Read a model written by `to_json`. Errors: `invalid_argument` for JSON
  /// syntax or a missing / mistyped field (`error` gets the details),
  /// `malformed_number` for a number that is not the expected kind,
  /// `non_finite` for a statistical band that is not finite, and the errors of
  /// `check()`.
  [[nodiscard]] static expected<model, errc> from_json(std::string_view text, io::json::parse_error* error = nullptr);
};

namespace detail {
inline void write_line(std::string& o, const line& l) {
  o += '[';
  io::json::write_int(o, l.offset);
  o += ',';
  io::json::write_int(o, l.slope_q48);
  o += ']';
}
inline void write_lines(std::string& o, const std::vector<line>& ls) {
  o += '[';
  for (std::size_t i = 0; i < ls.size(); ++i) {
    if (i) o += ',';
    write_line(o, ls[i]);
  }
  o += ']';
}
}  // namespace detail

inline std::string model::to_json() const {
  std::string o;
  o += "{\n  \"format\": \"tsync-model\",\n  \"version\": 1,\n  \"estimator\": ";
  io::json::write_string(o, estimator);
  o += ",\n  \"segments\": [";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto& s = segments[i];
    o += i ? ",\n    {" : "\n    {";
    o += "\"begin\": "; io::json::write_int(o, s.begin);
    o += ", \"end\": "; io::json::write_int(o, s.end);
    o += ", \"ref\": "; io::json::write_int(o, s.ref);
    o += ", \"offset\": "; io::json::write_int(o, s.fit.offset);
    o += ", \"slope_q48\": "; io::json::write_int(o, s.fit.slope_q48);
    o += ", \"drift_ppb\": "; io::json::write_double(o, q48_to_slope(s.fit.slope_q48) * 1e9);
    o += ", \"cause\": "; io::json::write_string(o, to_string(s.diag.cause));
    o += ",\n     \"hard\": {\"lo\": "; detail::write_lines(o, s.lo);
    o += ", \"hi\": "; detail::write_lines(o, s.hi);
    if (auto hb = hard_bounds(at_ns<guest>(s.ref))) {
      o += ", \"lo_at_ref\": "; io::json::write_int(o, raw_ns(hb->lo) - s.ref);
      o += ", \"hi_at_ref\": "; io::json::write_int(o, raw_ns(hb->hi) - s.ref);
    }
    o += "},\n     \"stat\": ";
    if (s.stat) {
      o += "{\"var_offset\": "; io::json::write_double(o, s.stat->var_offset);
      o += ", \"cov\": "; io::json::write_double(o, s.stat->cov);
      o += ", \"var_slope\": "; io::json::write_double(o, s.stat->var_slope);
      o += ", \"k\": "; io::json::write_double(o, s.stat->k);
      o += ", \"half_width_at_ref\": "; io::json::write_double(o, s.stat->half_width(0.0));
      o += '}';
    } else {
      o += "null";
    }
    o += ",\n     \"diagnostics\": {\"probes_used\": "; io::json::write_uint(o, s.diag.stats.probes_used);
    o += ", \"probes_rejected\": "; io::json::write_uint(o, s.diag.stats.probes_rejected);
    o += ", \"min_rtt\": "; io::json::write_int(o, s.diag.stats.min_rtt);
    o += ", \"bursts\": "; io::json::write_uint(o, s.diag.stats.bursts);
    o += "}}";
  }
  o += "\n  ]\n}\n";
  return o;
}

namespace detail {

struct json_reader {
  io::json::parse_error* err;
  errc fail(errc c, std::string msg) {
    if (err && err->code == errc::ok) *err = {c, 0, std::move(msg)};
    return c;
  }
  std::optional<std::int64_t> get_int(const io::json::value& obj, std::string_view key, errc& e) {
    const io::json::value* v = obj.find(key);
    if (!v || v->k != io::json::value::kind::number) {
      e = fail(errc::invalid_argument, "missing or non-numeric field '" + std::string(key) + "'");
      return std::nullopt;
    }
    auto i = v->as_int64();
    if (!i) e = fail(errc::malformed_number, "field '" + std::string(key) + "' is not a 64-bit integer");
    return i;
  }
  std::optional<double> get_double(const io::json::value& obj, std::string_view key, errc& e) {
    const io::json::value* v = obj.find(key);
    if (!v || v->k != io::json::value::kind::number) {
      e = fail(errc::invalid_argument, "missing or non-numeric field '" + std::string(key) + "'");
      return std::nullopt;
    }
    auto d = v->as_double();
    if (!d) e = fail(errc::non_finite, "field '" + std::string(key) + "' is not a finite number");
    return d;
  }
  bool get_lines(const io::json::value* v, std::vector<line>& out, errc& e) {
    if (!v || v->k != io::json::value::kind::array) {
      e = fail(errc::invalid_argument, "hard bounds must be arrays of [offset, slope_q48] pairs");
      return false;
    }
    for (const auto& it : v->items) {
      if (it.k != io::json::value::kind::array || it.items.size() != 2) {
        e = fail(errc::invalid_argument, "a bound line must be [offset, slope_q48]");
        return false;
      }
      auto a = it.items[0].as_int64();
      auto b = it.items[1].as_int64();
      if (!a || !b) {
        e = fail(errc::malformed_number, "a bound line must hold two 64-bit integers");
        return false;
      }
      out.push_back({*a, *b});
    }
    return true;
  }
};

}  // namespace detail

inline expected<model, errc> model::from_json(std::string_view text, io::json::parse_error* error) {
  if (error) *error = {};
  auto doc = io::json::parse(text);
  if (!doc) {
    if (error) *error = doc.error();
    return unexpected(doc.error().code);
  }
  detail::json_reader r{error};
  const io::json::value& root = *doc;
  if (root.k != io::json::value::kind::object) return unexpected(r.fail(errc::invalid_argument, "the model must be a JSON object"));
  const io::json::value* fmt = root.find("format");
  if (!fmt || fmt->k != io::json::value::kind::string || fmt->text != "tsync-model")
    return unexpected(r.fail(errc::invalid_argument, "\"format\" must be \"tsync-model\""));
  errc e = errc::ok;
  auto ver = r.get_int(root, "version", e);
  if (!ver) return unexpected(e);
  if (*ver != 1) return unexpected(r.fail(errc::unsupported_version, "unsupported model version"));
  model m;
  const io::json::value* est = root.find("estimator");
  if (!est || est->k != io::json::value::kind::string)
    return unexpected(r.fail(errc::invalid_argument, "\"estimator\" must be a string"));
  m.estimator = est->text;
  const io::json::value* segs = root.find("segments");
  if (!segs || segs->k != io::json::value::kind::array)
    return unexpected(r.fail(errc::invalid_argument, "\"segments\" must be an array"));
  for (const auto& sv : segs->items) {
    if (sv.k != io::json::value::kind::object) return unexpected(r.fail(errc::invalid_argument, "a segment must be an object"));
    segment s;
    auto begin = r.get_int(sv, "begin", e);
    if (!begin) return unexpected(e);
    auto end = r.get_int(sv, "end", e);
    if (!end) return unexpected(e);
    auto ref = r.get_int(sv, "ref", e);
    if (!ref) return unexpected(e);
    auto off = r.get_int(sv, "offset", e);
    if (!off) return unexpected(e);
    auto slope = r.get_int(sv, "slope_q48", e);
    if (!slope) return unexpected(e);
    s.begin = *begin;
    s.end = *end;
    s.ref = *ref;
    s.fit = {*off, *slope};
    const io::json::value* cause = sv.find("cause");
    if (!cause || cause->k != io::json::value::kind::string || !cause_from_string(cause->text))
      return unexpected(r.fail(errc::invalid_argument, "\"cause\" must name a boundary cause"));
    s.diag.cause = *cause_from_string(cause->text);
    const io::json::value* hard = sv.find("hard");
    if (!hard || hard->k != io::json::value::kind::object)
      return unexpected(r.fail(errc::invalid_argument, "\"hard\" must be an object"));
    if (!r.get_lines(hard->find("lo"), s.lo, e) || !r.get_lines(hard->find("hi"), s.hi, e)) return unexpected(e);
    const io::json::value* st = sv.find("stat");
    if (!st) return unexpected(r.fail(errc::invalid_argument, "missing field 'stat'"));
    if (st->k == io::json::value::kind::object) {
      stat_band b;
      auto v0 = r.get_double(*st, "var_offset", e);
      auto v1 = r.get_double(*st, "cov", e);
      auto v2 = r.get_double(*st, "var_slope", e);
      auto v3 = r.get_double(*st, "k", e);
      if (!v0 || !v1 || !v2 || !v3) return unexpected(e);
      b.var_offset = *v0;
      b.cov = *v1;
      b.var_slope = *v2;
      b.k = *v3;
      s.stat = b;
    } else if (st->k != io::json::value::kind::null) {
      return unexpected(r.fail(errc::invalid_argument, "\"stat\" must be an object or null"));
    }
    const io::json::value* dg = sv.find("diagnostics");
    if (!dg || dg->k != io::json::value::kind::object)
      return unexpected(r.fail(errc::invalid_argument, "\"diagnostics\" must be an object"));
    auto used = r.get_int(*dg, "probes_used", e);
    auto rej = r.get_int(*dg, "probes_rejected", e);
    auto mr = r.get_int(*dg, "min_rtt", e);
    auto nb = r.get_int(*dg, "bursts", e);
    if (!used || !rej || !mr || !nb) return unexpected(e);
    if (*used < 0 || *rej < 0 || *nb < 0 || *nb > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()))
      return unexpected(r.fail(errc::out_of_range, "negative or oversized diagnostic count"));
    s.diag.stats = {static_cast<std::uint64_t>(*used), static_cast<std::uint64_t>(*rej), *mr,
                    static_cast<std::uint32_t>(*nb)};
    m.segments.push_back(std::move(s));
  }
  if (auto c = m.check(); !c) {
    return unexpected(r.fail(c.error(), c.error() == errc::empty_input ? "the model has no segments"
                                                                       : "segments violate the model invariants"));
  }
  return m;
}

}  // namespace tsync::estimate
