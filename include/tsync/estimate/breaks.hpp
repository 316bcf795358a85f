#pragma once
/// \file
/// Offline discontinuity handling that needs the order of the bursts, not
/// only their guest times: a guest reboot (or any backward step of the guest
/// clock) makes guest times repeat, so no single guest→host model can hold
/// both sides. The probes are split into *epochs* (runs of bursts, in burst
/// order, whose guest times never go backwards) and each epoch gets its own
/// model. The fits themselves refuse a trace with more than one epoch
/// (`errc::ambiguous`): they order bursts by guest time and would merge two
/// boots into one timeline.
///
/// Forward discontinuities (pause/resume, suspend, a forward clock step, a
/// frequency step) keep guest times increasing and are handled inside one
/// epoch: the `segmented` estimator splits its model there and bridges the
/// gap with the union of both sides' bounds (`boundary_cause::gap`), and the
/// per-burst models do the same between two bursts whose hard intervals
/// cannot both hold under `max_drift` (see `interpolate_bursts`).
///
/// Online (while a session runs): `step_detector` checks every probe, in
/// arrival order, against the offsets the probes before it allow under
/// `|drift| <= max_drift` (a sound causal test: with a continuous clock map
/// the truth never leaves the propagated interval). A run of `confirm`
/// probes that contradict it (and agree among themselves) is a break: a
/// `clock_step` (the guest clock jumped forward, or stood still while the
/// host's ran: a pause, suspend, migration), or `backward` (the guest clock
/// went back: a reboot, an agent on a restarted clock, a backward step). A
/// single glitched probe is not a break. Frequency steps keep the propagated
/// interval non-empty; they are found by the session's whole-trace fit (the
/// segment's probes no longer admit one line, sync/whole_trace.hpp). The
/// vocabulary (`break_kind`, `clock_break`) is shared with the exchange, which
/// reports a changed boot identity as a `reboot`.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// What kind of discontinuity separates two segments.
enum class break_kind : std::uint8_t {
  clock_step,      ///< the offset jumped (pause/resume, suspend, migration, a forward clock step)
  backward,        ///< guest time went backwards (a reboot or a backward clock step)
  frequency_step,  ///< the probes no longer fit one line (a frequency step, or a step below the drift slack)
  reboot,          ///< the peer's boot identity changed (reported by the exchange)
};

/// Stable name of a break kind (used in JSON, CSV headers and messages).
[[nodiscard]] constexpr std::string_view to_string(break_kind k) noexcept {
  switch (k) {
    case break_kind::clock_step: return "clock_step";
    case break_kind::backward: return "backward";
    case break_kind::frequency_step: return "frequency_step";
    case break_kind::reboot: return "reboot";
  }
  return "unknown";
}

/// Parse a break kind name.
[[nodiscard]] constexpr std::optional<break_kind> break_kind_from_string(std::string_view s) noexcept {
  for (auto k : {break_kind::clock_step, break_kind::backward, break_kind::frequency_step, break_kind::reboot})
    if (to_string(k) == s) return k;
  return std::nullopt;
}

/// One detected discontinuity. Segment `segment − 1` ends with the sample at
/// (`guest_before`, `host_before`), segment `segment` starts with the one at
/// (`guest_after`, `host_after`); nothing is known to connect them. Guest
/// times are each read on their own side of the break (after a reboot
/// `guest_after` may be smaller than `guest_before`). Offsets are host − guest.
struct clock_break {
  break_kind kind = break_kind::clock_step;
  std::uint32_t vcpu = 0;
  std::uint32_t segment = 1;        ///< id of the segment that starts after the break
  std::uint32_t series = 0;         ///< series (burst) in which it was seen
  std::int64_t guest_before = 0;    ///< last guest stamp before the break
  std::int64_t guest_after = 0;     ///< first guest stamp after it
  std::int64_t host_before = 0;     ///< host stamp of the last probe before the break (its t2)
  std::int64_t host_after = 0;      ///< host stamp of the first probe after it (its t1)
  std::optional<std::int64_t> step; ///< change of host − guest across it, when the probes say (ns, midpoint)
  std::string reason;               ///< one line for people
};

/// Options of `step_detector`.
struct step_detector_options {
  double max_drift = 1e-3;     ///< largest |drift| of a continuous clock map (as `fit_options::max_drift`)
  std::uint32_t confirm = 3;   ///< contradicting probes in a row that make a break (>= 1)
};

/// The online probe-by-probe test of the file comment. Probes are in the
/// registry's convention: t1 and t2 on the host (the clock mapped onto), g on
/// the guest. Feed one vCPU's probes in the order they were taken.
class step_detector {
 public:
  explicit step_detector(step_detector_options o = {}) : opt_(o) {
    if (opt_.confirm == 0) opt_.confirm = 1;
  }

  /// Feed one probe (a causally impossible probe, t2 < t1, is ignored).
  /// Returns a break when this probe completes the confirmation of one; the
  /// break starts at the first probe of the contradicting run (`pending_start()`
  /// probes of the current feed belong to the new segment).
  [[nodiscard]] std::optional<clock_break> feed(const probe_sample& p) {
    if (p.t2 < p.t1) return std::nullopt;
    const state me{p.g, p.t1 - p.g, p.t2 - p.g, p.t1, p.t2};
    if (!have_) {
      cur_ = me;
      have_ = true;
      return std::nullopt;
    }
    if (consistent(cur_, me)) {
      cur_ = merge(cur_, me);
      pending_.clear();
      return std::nullopt;
    }
    // Contradicts the past: a glitch, or the start of a new segment.
    if (!pending_.empty() && !consistent(pend_, me)) pending_.clear();
    if (pending_.empty()) pend_ = me;
    else pend_ = merge(pend_, me);
    pending_.push_back(p);
    if (pending_.size() < opt_.confirm) return std::nullopt;
    clock_break b;
    const auto& first = pending_.front();
    b.kind = first.g < cur_.g ? break_kind::backward : break_kind::clock_step;
    b.series = first.burst;
    b.vcpu = first.vcpu;
    b.guest_before = cur_.g;
    b.guest_after = first.g;
    b.host_before = cur_.t2;
    b.host_after = first.t1;
    if (b.kind == break_kind::clock_step) {
      const i128 before = (static_cast<i128>(cur_.lo) + cur_.hi) / 2;
      const i128 after = (static_cast<i128>(pend_.lo) + pend_.hi) / 2;
      if (auto d = narrow_i64(after - before)) b.step = *d;
    }
    b.reason = b.kind == break_kind::backward
                   ? "guest time went backwards (a reboot or a backward clock step)"
                   : "the offset jumped beyond what drift explains (pause/resume, suspend, migration or a clock step)";
    cur_ = pend_;
    pending_.clear();
    return b;
  }

  /// Probes held as possible start of a new segment (not yet confirmed).
  [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }
  /// The probes of the pending run (the first probes of a segment, once confirmed).
  [[nodiscard]] std::span<const probe_sample> pending_probes() const noexcept { return pending_; }
  /// Forget everything (e.g. after a break reported by other means).
  void reset() noexcept {
    have_ = false;
    pending_.clear();
  }

 private:
  struct state {
    std::int64_t g = 0;    // guest time the interval holds at
    std::int64_t lo = 0;   // host − guest lower bound there
    std::int64_t hi = 0;   // and upper bound
    std::int64_t t1 = 0;   // host stamps of the latest probe
    std::int64_t t2 = 0;
  };
  [[nodiscard]] i128 slack(std::int64_t a, std::int64_t b) const noexcept {
    const i128 d = static_cast<i128>(a) - b;
    const long double s = static_cast<long double>(d < 0 ? -d : d) * static_cast<long double>(opt_.max_drift);
    return static_cast<i128>(s) + 1;
  }
  // `b` (later) agrees with `a` when b's guest time is not before a's and the
  // intervals meet once a's is widened by the drift over the gap.
  [[nodiscard]] bool consistent(const state& a, const state& b) const noexcept {
    if (b.g < a.g) return false;
    const i128 s = slack(a.g, b.g);
    return static_cast<i128>(b.lo) <= a.hi + s && static_cast<i128>(b.hi) >= a.lo - s;
  }
  [[nodiscard]] state merge(const state& a, const state& b) const noexcept {
    const i128 s = slack(a.g, b.g);
    state m = b;
    m.lo = static_cast<std::int64_t>(std::max<i128>(b.lo, a.lo - s));
    m.hi = static_cast<std::int64_t>(std::min<i128>(b.hi, a.hi + s));
    return m;
  }

  step_detector_options opt_;
  bool have_ = false;
  state cur_{};
  state pend_{};
  std::vector<probe_sample> pending_;
};

/// The probes of one epoch (a boot of the guest, or the time between two
/// backward steps of its clock), in input order.
struct epoch {
  std::uint32_t first_burst = 0;     ///< burst number of its first burst
  std::vector<probe_sample> probes;
};

/// Split probes into epochs: bursts are taken in burst-number order, and a
/// burst whose guest stamps all lie below the smallest guest stamp of the
/// burst before starts a new epoch (the guest clock went backwards: a reboot,
/// an agent on a restarted clock, a backward step). Empty input gives no
/// epochs.
[[nodiscard]] inline std::vector<epoch> split_epochs(std::span<const probe_sample> probes) {
  std::vector<probe_sample> v(probes.begin(), probes.end());
  std::stable_sort(v.begin(), v.end(), [](const probe_sample& a, const probe_sample& b) { return a.burst < b.burst; });
  std::vector<epoch> out;
  bool have_prev = false;
  std::int64_t prev_lo = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    std::int64_t lo = v[i].g, hi = v[i].g;
    while (j < v.size() && v[j].burst == v[i].burst) {
      lo = std::min(lo, v[j].g);
      hi = std::max(hi, v[j].g);
      ++j;
    }
    if (!have_prev || hi < prev_lo) out.push_back(epoch{v[i].burst, {}});
    out.back().probes.insert(out.back().probes.end(), v.begin() + static_cast<std::ptrdiff_t>(i),
                             v.begin() + static_cast<std::ptrdiff_t>(j));
    prev_lo = lo;
    have_prev = true;
    i = j;
  }
  return out;
}

/// Fit every epoch with `fit` (a callable `(span<const probe_sample>) ->
/// expected<model, errc>`, e.g. a lambda over `estimate::fit(name, …)`); the
/// first failure is returned.
template <class Fit>
[[nodiscard]] expected<std::vector<model>, errc> fit_epochs(std::span<const probe_sample> probes, Fit&& fit) {
  std::vector<model> out;
  for (const auto& e : split_epochs(probes)) {
    auto m = fit(std::span<const probe_sample>(e.probes));
    if (!m) return unexpected(m.error());
    out.push_back(std::move(*m));
  }
  if (out.empty()) return unexpected(errc::empty_input);
  return out;
}

/// One fitted segment of a session model.
struct model_part {
  std::uint32_t segment = 0;
  std::uint32_t epoch = 0;
  std::int64_t first_guest = 0;     ///< the guest-time span of its probes
  std::int64_t last_guest = 0;
  estimate::model model;            ///< its pieces (an estimator may split a segment further)
};

/// A whole-trace model of one vCPU: a model per segment and the breaks between.
struct session_model {
  std::string estimator;
  std::vector<model_part> parts;                 ///< in segment order
  std::vector<estimate::clock_break> breaks;     ///< breaks[i] starts parts[i + 1] (when every segment got a fit)
};

/// Which segments a guest time `g` may belong to, from the guest-time spans
/// of the segments (`first`, `last`, `epoch`, in segment order): segment k is
/// possible unless `g` lies at or before the last time of an earlier segment
/// of its epoch, or at or after the first time of a later one. Times repeat
/// across epochs, so candidates from two epochs mean the data cannot tell.
struct segment_span {
  std::uint32_t segment = 0;
  std::uint32_t epoch = 0;
  std::int64_t first = 0;
  std::int64_t last = 0;
};

/// The candidates for `g` (indices into `spans`), see `segment_span`.
[[nodiscard]] inline std::vector<std::size_t> segment_candidates(std::span<const segment_span> spans, std::int64_t g) {
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < spans.size(); ++k) {
    bool possible = true;
    for (std::size_t j = 0; j < spans.size() && possible; ++j) {
      if (j == k || spans[j].epoch != spans[k].epoch) continue;
      if (j < k && g <= spans[j].last) possible = false;
      if (j > k && g >= spans[j].first) possible = false;
    }
    if (possible) out.push_back(k);
  }
  return out;
}

/// True when the candidates lie in more than one epoch.
[[nodiscard]] inline bool candidates_ambiguous(std::span<const segment_span> spans, std::span<const std::size_t> c) {
  for (auto k : c)
    if (spans[k].epoch != spans[c.front()].epoch) return true;
  return false;
}

/// The spans of a session model's parts.
[[nodiscard]] inline std::vector<segment_span> spans_of(const session_model& m) {
  std::vector<segment_span> v;
  for (const auto& p : m.parts) v.push_back({p.segment, p.epoch, p.first_guest, p.last_guest});
  return v;
}

/// What a session model says about one guest time.
struct segment_answer {
  bool known = false;           ///< false: the time may belong to segments of different epochs ("unknown")
  std::int64_t host = 0;        ///< point estimate: from the segment whose data hold the time, else the
                                ///< earliest candidate (never interpolated across a break)
  std::int64_t lo = 0;          ///< hard interval of host times: the union over the candidates
  std::int64_t hi = 0;
  std::vector<std::uint32_t> segments;  ///< the candidate segments
};

/// Answer for guest time `g`, restricted to segment `only` when given.
/// Errors: `not_found` for a segment the model does not have, `empty_input`
/// for an empty model, and the model's own evaluation errors.
[[nodiscard]] inline expected<segment_answer, errc> query(const session_model& m, std::int64_t g,
                                                          std::optional<std::uint32_t> only = std::nullopt) {
  if (m.parts.empty()) return unexpected(errc::empty_input);
  const auto spans = spans_of(m);
  std::vector<std::size_t> cand;
  if (only) {
    for (std::size_t k = 0; k < m.parts.size(); ++k)
      if (m.parts[k].segment == *only) cand.push_back(k);
    if (cand.empty()) return unexpected(errc::not_found);
  } else {
    cand = segment_candidates(spans, g);
  }
  segment_answer a;
  for (auto k : cand) a.segments.push_back(m.parts[k].segment);
  if (cand.empty() || candidates_ambiguous(spans, cand)) return a;
  std::size_t point = cand.front();
  for (auto k : cand)
    if (spans[k].first <= g && g <= spans[k].last) point = k;
  auto h = m.parts[point].model.to_host(at_ns<guest>(g));
  if (!h) return unexpected(h.error());
  a.host = raw_ns(*h);
  bool first = true;
  for (auto k : cand) {
    auto hb = m.parts[k].model.hard_bounds(at_ns<guest>(g));
    if (!hb) return unexpected(hb.error());
    a.lo = first ? raw_ns(hb->lo) : std::min(a.lo, raw_ns(hb->lo));
    a.hi = first ? raw_ns(hb->hi) : std::max(a.hi, raw_ns(hb->hi));
    first = false;
  }
  a.known = true;
  return a;
}

}  // namespace tsync::estimate
