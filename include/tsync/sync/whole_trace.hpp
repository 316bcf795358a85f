#pragma once
/// \file
/// Whole-trace models in a session: every probe of a vCPU is checked for
/// breaks as it arrives, assigned to a *segment* (the run of data between two
/// breaks; ids 0, 1, 2, ... in session order), and kept in a bounded
/// reduction from which a whole-trace estimator (`convex_hull`, `segmented`,
/// ...) fits each segment at the end.
///
/// Bounded memory: of each series only the `keep_per_series` probes with the
/// highest lower bounds (t1 − g) and the `keep_per_series` with the lowest
/// upper bounds (t2 − g) are kept: the per-direction envelopes, which define
/// the feasible polygon of the hull fit. When a segment holds more than
/// `max_kept` probes, it is compacted to the vertices of its two envelope
/// hulls plus its most recent probes: a probe inside a hull never becomes a
/// vertex again when probes are added, so the feasible polygon (and every
/// hard interval) is the same as with every probe kept. Per series the cost is
/// O(kept) for the frequency-step test; nothing is re-fitted per series.
///
/// Breaks (estimate/breaks.hpp): `step_detector` finds offset steps and
/// backward guest time probe by probe; a series whose probes, added to the
/// segment's, admit no line with |drift| <= max_drift starts a new segment
/// (`frequency_step`); `add_break` records a break found by other means (a
/// changed boot identity) and starts a new segment at the next series.
/// Glitched probes (a contradicting probe that the next ones do not confirm)
/// are dropped and counted.
///
/// Probes are in the registry's convention: t1, t2 on the host, g on the
/// guest. A session whose initiator is the guest (`tsync sync --role guest`)
/// turns its probes into that convention first with `from_guest_initiator`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/breaks.hpp"
#include "tsync/estimate/hull.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/registry.hpp"

namespace tsync::inline TSYNC_ABI::sync {

/// The default whole-trace estimator of a session (chosen on the real-link
/// fixtures, docs/accuracy.md).
inline constexpr const char* default_model_estimator = "convex_hull";

/// Options of a `whole_trace_tracker`.
struct whole_trace_options {
  std::string estimator = default_model_estimator;  ///< registry name of the whole-trace estimator
  estimate::fit_options fit{};                      ///< its options (max_drift also bounds break detection)
  std::uint32_t keep_per_series = 32;               ///< probes kept per direction and series
  std::size_t max_kept = std::size_t{1} << 15;      ///< compaction threshold per segment
  bool detect_breaks = true;                        ///< offset steps and backward time
  bool detect_frequency_steps = true;               ///< segments that no longer fit one line
  std::uint32_t confirm = 3;                        ///< contradicting probes in a row that make a break
};

/// One segment's data.
struct segment_data {
  std::uint32_t id = 0;
  std::uint32_t epoch = 0;          ///< increases at every backward break (guest times repeat across epochs)
  std::int64_t first_guest = 0;     ///< guest stamps of its first and last probe
  std::int64_t last_guest = 0;
  std::int64_t first_host = 0;      ///< t1 of its first probe, t2 of its last
  std::int64_t last_host = 0;
  std::size_t probes = 0;           ///< probes assigned to it
  std::size_t series = 0;           ///< series that gave it probes
  std::vector<probe_sample> kept;   ///< the bounded reduction
};

using estimate::model_part;
using estimate::session_model;

/// A probe the guest initiated (t1, t2 on the guest clock, g the host's
/// stamp) in the registry's convention (t1, t2 on the host, g on the guest),
/// for break detection and whole-trace fits.
///
/// The host read g while the guest clock read somewhere in [t1, t2], so with
/// host = guest + o(guest): o(t1) <= g − t1 and o(t2) >= g − t2. The result
/// is placed at the guest midpoint m = t1 + (t2 − t1)/2 and moves each bound
/// to m by the largest change of the offset over that distance that
/// `max_drift` allows: m + g − t2 − ceil(max_drift·(t2 − m)) <= host(m) <=
/// m + g − t1 + ceil(max_drift·(m − t1)). The interval is therefore sound for
/// every |drift| <= max_drift, and wider than the round trip by
/// max_drift·(t2 − t1) (10 ns for a 10 µs round trip at 1000 ppm). A probe
/// with t2 < t1, or whose result does not fit in 64 bits, comes back with
/// t2 < t1 (causally impossible: every consumer drops it).
[[nodiscard]] inline probe_sample from_guest_initiator(const probe_sample& p, double max_drift) noexcept {
  probe_sample out = p;
  if (p.t2 < p.t1) return out;
  const i128 t1 = p.t1, t2 = p.t2, g = p.g;
  const i128 m = t1 + (t2 - t1) / 2;
  const double d = max_drift > 0 && max_drift < 1 ? max_drift : 0.0;
  const auto slack = [d](i128 span) {
    return static_cast<i128>(std::ceil(d * static_cast<double>(span)));
  };
  const i128 lo = m + (g - t2) - slack(t2 - m);
  const i128 hi = m + (g - t1) + slack(m - t1);
  constexpr i128 top = std::numeric_limits<std::int64_t>::max();
  constexpr i128 bottom = std::numeric_limits<std::int64_t>::min();
  if (lo < bottom || hi > top) {
    out.t1 = 1;
    out.t2 = 0;
    return out;
  }
  out.t1 = static_cast<std::int64_t>(lo);
  out.g = static_cast<std::int64_t>(m);
  out.t2 = static_cast<std::int64_t>(hi);
  return out;
}

namespace detail {
/// Indices of the probes of `v` on the upper hull of (g, t1 − g) and the
/// lower hull of (g, t2 − g).
[[nodiscard]] inline std::vector<std::size_t> envelope_vertices(std::span<const probe_sample> v) {
  std::vector<estimate::detail::hpt> lo, hi;
  lo.reserve(v.size());
  hi.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    lo.push_back({static_cast<i128>(v[i].g), static_cast<i128>(v[i].t1) - v[i].g, i});
    hi.push_back({static_cast<i128>(v[i].g), static_cast<i128>(v[i].t2) - v[i].g, i});
  }
  std::vector<std::size_t> out;
  for (const auto& p : estimate::detail::half_hull(std::move(lo), true)) out.push_back(p.idx);
  for (const auto& p : estimate::detail::half_hull(std::move(hi), false)) out.push_back(p.idx);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

/// The `k` probes with the highest lower bounds and the `k` with the lowest
/// upper bounds, in input order.
[[nodiscard]] inline std::vector<probe_sample> envelope_candidates(std::span<const probe_sample> v, std::size_t k) {
  if (v.size() <= 2 * k) return {v.begin(), v.end()};
  std::vector<std::size_t> a(v.size()), b;
  for (std::size_t i = 0; i < v.size(); ++i) a[i] = i;
  b = a;
  std::partial_sort(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(k), a.end(),
                    [&](std::size_t x, std::size_t y) { return v[x].t1 - v[x].g > v[y].t1 - v[y].g; });
  std::partial_sort(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(k), b.end(),
                    [&](std::size_t x, std::size_t y) { return v[x].t2 - v[x].g < v[y].t2 - v[y].g; });
  std::vector<char> keep(v.size(), 0);
  for (std::size_t i = 0; i < k; ++i) keep[a[i]] = keep[b[i]] = 1;
  std::vector<probe_sample> out;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (keep[i]) out.push_back(v[i]);
  return out;
}
}  // namespace detail

/// Segments, breaks and the bounded probe reduction of one vCPU (see the file
/// comment). Not thread-safe: one tracker per vCPU, fed from one thread.
class whole_trace_tracker {
 public:
  explicit whole_trace_tracker(whole_trace_options o = {})
      : opt_(std::move(o)), det_(estimate::step_detector_options{opt_.fit.max_drift, opt_.confirm}) {}

  /// Feed the probes of one series (in the order they were taken). Returns
  /// the breaks found in it (also kept in `breaks()`); `segment_of`, when
  /// given, receives the segment of every probe (`npos` for a dropped one).
  std::vector<estimate::clock_break> add_series(std::span<const probe_sample> probes,
                                                std::vector<std::uint32_t>* segment_of = nullptr) {
    std::vector<estimate::clock_break> found;
    if (segment_of) segment_of->assign(probes.size(), npos);
    std::vector<std::size_t> held;          // indices of probes held by the detector
    std::vector<std::size_t> part;          // indices committed to the current segment in this series
    for (std::size_t i = 0; i < probes.size(); ++i) {
      const auto& p = probes[i];
      if (p.t2 < p.t1) continue;            // causally impossible: never used
      if (!opt_.detect_breaks) {
        part.push_back(i);
        continue;
      }
      auto b = det_.feed(p);
      if (b) {
        held.push_back(i);
        const std::size_t run = std::min<std::size_t>(opt_.confirm, held.size());
        dropped_ += held.size() - run;
        flush_part(probes, part, segment_of);
        b->segment = next_id();
        start_segment(b->kind == estimate::break_kind::backward);
        part.assign(held.end() - static_cast<std::ptrdiff_t>(run), held.end());
        held.clear();
        breaks_.push_back(*b);
        found.push_back(std::move(*b));
      } else if (det_.pending() == 0) {
        dropped_ += held.size();
        held.clear();
        part.push_back(i);
      } else {
        held.push_back(i);
        if (held.size() > det_.pending()) {
          dropped_ += held.size() - det_.pending();
          held.erase(held.begin(), held.end() - static_cast<std::ptrdiff_t>(det_.pending()));
        }
      }
    }
    // Probes still held at the end of a series wait for the next one: they
    // are kept out of every segment (a glitch, or the start of the next).
    dropped_ += held.size();
    if (auto fb = flush_part(probes, part, segment_of)) {
      breaks_.push_back(*fb);
      found.push_back(std::move(*fb));
    }
    return found;
  }

  /// Record a break found by other means (e.g. the peer's boot identity
  /// changed): the next probe starts a new segment (a new epoch for `reboot`
  /// and `backward`). The break's `segment` is set here.
  estimate::clock_break add_break(estimate::clock_break b) {
    b.segment = next_id();
    const bool new_epoch = b.kind == estimate::break_kind::reboot || b.kind == estimate::break_kind::backward;
    start_segment(new_epoch);
    det_.reset();
    breaks_.push_back(b);
    return b;
  }

  /// The segment the next probe goes to (when no break comes first).
  [[nodiscard]] std::uint32_t current_segment() const noexcept { return segs_.empty() ? 0 : segs_.back().id; }
  [[nodiscard]] const std::vector<segment_data>& segments() const noexcept { return segs_; }
  [[nodiscard]] const std::vector<estimate::clock_break>& breaks() const noexcept { return breaks_; }
  /// Probes dropped as glitches (contradicting, not confirmed by the next ones).
  [[nodiscard]] std::size_t dropped() const noexcept { return dropped_; }
  [[nodiscard]] const whole_trace_options& options() const noexcept { return opt_; }

  /// Fit every segment that has probes with the whole-trace estimator.
  /// Errors: `errc::empty_input` when no segment has probes; a segment whose
  /// fit fails is left out and its error is reported in `failures`.
  [[nodiscard]] expected<session_model, errc> fit(std::vector<std::pair<std::uint32_t, errc>>* failures = nullptr) const {
    session_model out;
    out.estimator = opt_.estimator;
    out.breaks = breaks_;
    for (const auto& s : segs_) {
      if (s.kept.empty()) continue;
      auto m = estimate::fit(opt_.estimator, s.kept, opt_.fit);
      if (!m) {
        if (failures) failures->emplace_back(s.id, m.error());
        continue;
      }
      out.parts.push_back(model_part{s.id, s.epoch, s.first_guest, s.last_guest, std::move(*m)});
    }
    if (out.parts.empty()) return unexpected(errc::empty_input);
    return out;
  }

  static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

 private:
  std::uint32_t next_id() const noexcept { return segs_.empty() ? 0 : segs_.back().id + 1; }

  void start_segment(bool new_epoch) {
    segment_data s;
    s.id = next_id();
    s.epoch = segs_.empty() ? 0 : segs_.back().epoch + (new_epoch ? 1 : 0);
    segs_.push_back(std::move(s));
  }

  /// Commit `part` (indices into `probes`) to the current segment; returns a
  /// frequency-step break when they do not fit the segment's line.
  std::optional<estimate::clock_break> flush_part(std::span<const probe_sample> probes, std::vector<std::size_t>& part,
                                                  std::vector<std::uint32_t>* segment_of) {
    if (part.empty()) return std::nullopt;
    if (segs_.empty()) start_segment(false);
    std::vector<probe_sample> v;
    v.reserve(part.size());
    for (auto i : part) v.push_back(probes[i]);
    auto red = detail::envelope_candidates(v, opt_.keep_per_series);
    std::optional<estimate::clock_break> fb;
    if (opt_.detect_frequency_steps && segs_.back().series > 0 && !fits_one_line(segs_.back().kept, red)) {
      fb = estimate::clock_break{};
      fb->kind = estimate::break_kind::frequency_step;
      fb->vcpu = v.front().vcpu;
      fb->series = v.front().burst;
      fb->guest_before = segs_.back().last_guest;
      fb->host_before = segs_.back().last_host;
      fb->guest_after = v.front().g;
      fb->host_after = v.front().t1;
      fb->segment = next_id();
      fb->reason = "the probes no longer fit one line within the drift bound (a frequency step, or a small clock step)";
      start_segment(false);
      det_.reset();
      for (const auto& p : v) (void)det_.feed(p);
    }
    auto& s = segs_.back();
    if (s.probes == 0) {
      s.first_guest = v.front().g;
      s.first_host = v.front().t1;
    }
    s.last_guest = v.back().g;
    s.last_host = v.back().t2;
    s.probes += v.size();
    ++s.series;
    s.kept.insert(s.kept.end(), red.begin(), red.end());
    if (s.kept.size() > opt_.max_kept) compact(s);
    if (segment_of)
      for (auto i : part) (*segment_of)[i] = s.id;
    part.clear();
    return fb;
  }

  /// True when `a` and `b` together admit a line with |drift| <= max_drift
  /// (no probe dropped).
  [[nodiscard]] bool fits_one_line(const std::vector<probe_sample>& a, const std::vector<probe_sample>& b) const {
    std::vector<probe_sample> all;
    all.reserve(a.size() + b.size());
    all.insert(all.end(), a.begin(), a.end());
    all.insert(all.end(), b.begin(), b.end());
    estimate::fit_options o = opt_.fit;
    o.max_soft_reject = 0;
    const auto ref = all[all.size() / 2].g;
    auto h = estimate::fit_hull(all, ref, o);
    return h.has_value() || h.error() != errc::infeasible;
  }

  /// Keep the envelope hull vertices and the most recent half of `max_kept`.
  void compact(segment_data& s) const {
    const std::size_t recent = opt_.max_kept / 2;
    const std::size_t cut = s.kept.size() - std::min(recent, s.kept.size());
    auto head = std::span<const probe_sample>(s.kept).first(cut);
    std::vector<probe_sample> out;
    for (auto i : detail::envelope_vertices(head)) out.push_back(head[i]);
    out.insert(out.end(), s.kept.begin() + static_cast<std::ptrdiff_t>(cut), s.kept.end());
    s.kept = std::move(out);
  }

  whole_trace_options opt_;
  estimate::step_detector det_;
  std::vector<segment_data> segs_;
  std::vector<estimate::clock_break> breaks_;
  std::size_t dropped_ = 0;
};

using estimate::segment_span;
using estimate::segment_candidates;
using estimate::candidates_ambiguous;

}  // namespace tsync::sync
