#pragma once
/// \file
/// The probe generator: runs a scenario for one seed and returns the probes an
/// initiator would record, the exact truth, and per-burst bookkeeping.
///
/// Convention: the host is the initiator (`t1`, `t2` are host ns), the guest
/// the responder (`g` is guest ns). Each burst sends `probes_per_burst`
/// sequential probes. For probe k the host sends at `s` (stamp `t1`); the guest
/// receives it at `a` and stamps `g` (its clock `truth.guest_at(a)` plus stamp
/// noise / glitch / quantisation); the reply leaves at once and arrives at `r`
/// (stamp `t2`). The host waits at most `timeout` for a reply and then sends the
/// next probe `probe_gap` after the reply (or the timeout).
///
/// The recording is a raw capture before any checks: while the host waits for
/// its probe's own reply it records *every* reply that arrives, as
/// `(t1 of the current probe, g and id carried by that reply, t2 of its
/// arrival)`, and the wait ends with the own reply (or the timeout). Replies
/// arriving while the host is not waiting are dropped. So:
/// - a lost message (either direction) or a reply later than the timeout gives
///   no record for that probe;
/// - a held-back (reordered) reply that turns up while the host waits for a
///   later probe is recorded with the later probe's `t1`: a *mis-paired* record
///   whose id is lower than that of the probe sent at its `t1` and whose `g`
///   is too early (it breaks causality: `g − t1` is below the true
///   `guest − host`). When that probe's own reply arrives, it is recorded next
///   with the same `t1`;
/// - a duplicate that turns up during a wait is recorded the same way and
///   repeats an id already seen (a *duplicate* id).
/// Checks that catch most of them: drop repeated ids, and of several records
/// sharing a `t1` keep only the one with the highest id.
/// Ids are unique per sent probe across the whole trace (they count up from 0).
/// Records are in send order (`t1` increasing).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/sim/clock_model.hpp"
#include "tsync/sim/link_model.hpp"
#include "tsync/sim/random.hpp"
#include "tsync/sim/scenario.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::sim {

/// Bookkeeping of one burst.
struct burst_info {
  std::uint32_t index = 0;    ///< burst number (the `burst` field of its probes)
  std::uint32_t vcpu = 0;     ///< vCPU it ran on
  std::int64_t start_ns = 0;  ///< host time the first probe was sent
  std::int64_t end_ns = 0;    ///< host time the burst finished (last reply or timeout)
  std::uint32_t sent = 0;     ///< probes sent
  std::uint32_t recorded = 0; ///< records produced
};

/// Counters over the whole run.
struct sim_stats {
  std::uint64_t sent = 0;        ///< probes sent
  std::uint64_t recorded = 0;    ///< records produced (= probes.size())
  std::uint64_t timeouts = 0;    ///< waits that ended without a reply
  std::uint64_t mispaired = 0;   ///< records whose reply belongs to an earlier probe (not a duplicate)
  std::uint64_t duplicates = 0;  ///< records repeating an id already recorded
  std::uint64_t glitched = 0;    ///< recorded guest stamps that carry a glitch
  std::uint64_t messages_lost = 0;  ///< messages lost (both directions)
};

/// The ground truth of one probe record (the true instants, before stamping).
struct probe_truth {
  std::uint64_t sent_id = 0;    ///< id of the probe whose send gave the record's t1
  std::int64_t send_ns = 0;     ///< true host time of the send of the record's probe
  std::int64_t guest_rx_ns = 0; ///< true host time the guest stamped the reply's g
  std::int64_t recv_ns = 0;     ///< true host time the reply arrived
  bool mispaired = false;       ///< g belongs to another (earlier) probe
  bool duplicate = false;       ///< the id was already recorded
  bool glitched = false;        ///< g carries a glitch
};

/// One simulated run.
struct trace {
  scenario sc{};
  std::uint64_t seed = 0;
  truth_map truth{};
  std::vector<probe_sample> probes{};
  std::vector<probe_truth> probe_truths{};  ///< parallel to `probes`
  std::vector<burst_info> bursts{};
  sim_stats stats{};

  /// The asymmetry floor (ns) at host time `h` (see `link_model::asymmetry_floor`).
  [[nodiscard]] double floor_at(std::int64_t h) const noexcept { return sc.floor_at(h); }
  /// The probes of burst `b` (a contiguous range of `probes`).
  template <class = void>
  [[nodiscard]] std::vector<probe_sample> burst_probes(std::uint32_t b) const {
    std::vector<probe_sample> out;
    for (const auto& p : probes)
      if (p.burst == b) out.push_back(p);
    return out;
  }
};

/// Independent random streams of one run, derived from its seed.
enum class stream : std::uint64_t { truth = 0, link = 1, stamps = 2, schedule = 3 };

namespace detail {

/// The state of one simulated run, advanced burst by burst (`run_burst`) and
/// probe by probe: send a probe (`send_probe`), wait for its reply and record
/// every reply that arrives meanwhile (`collect`).
class simulation {
 public:
  template <class = void>
  simulation(const scenario& sc, std::uint64_t seed, trace& tr)
      : sc_(sc),
        tr_(tr),
        link_(sc.link, derive_seed(seed, static_cast<std::uint64_t>(stream::link)), sc.start_ns),
        stamp_rng_(derive_seed(seed, static_cast<std::uint64_t>(stream::stamps))),
        sched_rng_(derive_seed(seed, static_cast<std::uint64_t>(stream::schedule))),
        stamps_{&sc.clock} {
    const std::size_t n = static_cast<std::size_t>(sc.burst_count()) * sc.probes_per_burst;
    tr_.probes.reserve(n);
    tr_.probe_truths.reserve(n);
    recorded_ids_.reserve(n);
  }

  /// Run burst `b`: its start (with jitter), then its probes one after the other.
  template <class = void>
  void run_burst(std::uint32_t b) {
    burst_info bi;
    bi.index = b;
    bi.vcpu = b % sc_.vcpus;
    const std::int64_t jitter =
        sc_.burst_jitter_ns > 0
            ? static_cast<std::int64_t>(sched_rng_.below(static_cast<std::uint64_t>(sc_.burst_jitter_ns)))
            : 0;
    std::int64_t s = sc_.start_ns + static_cast<std::int64_t>(b) * sc_.burst_interval_ns + jitter;
    bi.start_ns = s;
    pending_.clear();
    for (std::uint32_t k = 0; k < sc_.probes_per_burst; ++k) {
      const std::uint64_t id = next_id_++;
      recorded_ids_.push_back(false);
      ++bi.sent;
      const std::int64_t t1 = stamps_.host_stamp(s, stamp_rng_);
      send_probe(s, id);
      s = collect(s, t1, id, bi) + sc_.probe_gap_ns;
    }
    bi.end_ns = s - sc_.probe_gap_ns;
    tr_.bursts.push_back(bi);
  }

  /// The run's totals.
  void finish() {
    tr_.stats.sent = next_id_;
    tr_.stats.recorded = tr_.probes.size();
    tr_.stats.messages_lost = link_.lost();
  }

 private:
  struct in_flight {
    std::int64_t arrival;
    std::int64_t g;
    std::int64_t guest_rx;
    std::int64_t send;
    std::uint64_t id;
    bool glitched;
  };

  // The forward message (and its duplicate): the guest stamps and replies to each copy.
  template <class = void>
  void send_probe(std::int64_t s, std::uint64_t id) {
    const delivery fd = link_.send(direction::forward, s);
    if (!fd) return;
    const std::int64_t copies[2] = {fd.arrival, fd.duplicate.value_or(0)};
    const int n_copies = fd.duplicate ? 2 : 1;
    for (int c = 0; c < n_copies; ++c) {
      const std::int64_t a = copies[c];
      bool glitched = false;
      const std::int64_t g = stamps_.guest_stamp(tr_.truth.guest_at(a), stamp_rng_, glitched);
      const delivery bd = link_.send(direction::backward, a);
      if (bd) {
        pending_.push_back({bd.arrival, g, a, s, id, glitched});
        if (bd.duplicate) pending_.push_back({*bd.duplicate, g, a, s, id, glitched});
      }
    }
  }

  // Wait for probe `id`'s own reply (at most `timeout`); drop replies that
  // arrived before the wait; record every reply that arrives during it.
  // Returns the end of the wait.
  template <class = void>
  std::int64_t collect(std::int64_t s, std::int64_t t1, std::uint64_t id, burst_info& bi) {
    std::erase_if(pending_, [s](const in_flight& f) { return f.arrival < s; });
    std::sort(pending_.begin(), pending_.end(),
              [](const in_flight& x, const in_flight& y) { return x.arrival < y.arrival; });
    std::int64_t wait_end = s + sc_.timeout_ns;
    bool got_own = false;
    for (const auto& f : pending_) {
      if (f.id == id && f.arrival <= wait_end) {
        wait_end = f.arrival;
        got_own = true;
        break;
      }
    }
    std::size_t taken = 0;
    for (const auto& f : pending_) {
      if (f.arrival > wait_end) break;
      ++taken;
      record(f, s, t1, id, bi);
      if (got_own && f.id == id && f.arrival == wait_end) break;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(taken));
    if (!got_own) ++tr_.stats.timeouts;
    return wait_end;
  }

  // Record reply `f` to the probe `id` sent at `s` and stamped `t1`.
  template <class = void>
  void record(const in_flight& f, std::int64_t s, std::int64_t t1, std::uint64_t id, burst_info& bi) {
    probe_sample p;
    p.t1 = t1;
    p.g = f.g;
    p.t2 = stamps_.host_stamp(f.arrival, stamp_rng_);
    p.id = f.id;
    p.burst = bi.index;
    p.vcpu = bi.vcpu;
    probe_truth pt;
    pt.sent_id = id;
    pt.send_ns = s;
    pt.guest_rx_ns = f.guest_rx;
    pt.recv_ns = f.arrival;
    pt.glitched = f.glitched;
    const auto idx = static_cast<std::size_t>(f.id);
    if (recorded_ids_[idx]) {
      pt.duplicate = true;
      ++tr_.stats.duplicates;
    } else if (f.id != id) {
      pt.mispaired = true;
      ++tr_.stats.mispaired;
    }
    recorded_ids_[idx] = true;
    if (f.glitched) ++tr_.stats.glitched;
    tr_.probes.push_back(p);
    tr_.probe_truths.push_back(pt);
    ++bi.recorded;
  }

  const scenario& sc_;
  trace& tr_;
  link_state link_;
  rng stamp_rng_;
  rng sched_rng_;
  stamp_model stamps_;
  std::vector<in_flight> pending_{};
  std::vector<bool> recorded_ids_{};
  std::uint64_t next_id_ = 0;
};

}  // namespace detail

/// Run `sc` with `seed`. Errors: the scenario's `validate()` error, or
/// `errc::overflow` when a time leaves int64.
template <class = void>
[[nodiscard]] inline expected<trace, errc> simulate(const scenario& sc, std::uint64_t seed) {
  if (auto v = validate(sc); !v) return unexpected(v.error());
  trace tr;
  tr.sc = sc;
  tr.seed = seed;
  // Truth span: the trace plus room for the last burst.
  const i128 burst_worst = static_cast<i128>(sc.probes_per_burst) * (sc.timeout_ns + sc.probe_gap_ns);
  const i128 span = static_cast<i128>(sc.duration_ns) + sc.burst_jitter_ns + burst_worst + 1'000'000'000;
  if (span > (static_cast<i128>(1) << 62)) return unexpected(errc::overflow);
  auto truth = truth_map::make(sc.clock, sc.start_ns, static_cast<std::int64_t>(span),
                               derive_seed(seed, static_cast<std::uint64_t>(stream::truth)));
  if (!truth) return unexpected(truth.error());
  tr.truth = std::move(*truth);
  detail::simulation run(sc, seed, tr);
  const std::uint32_t n_bursts = sc.burst_count();
  for (std::uint32_t b = 0; b < n_bursts; ++b) run.run_burst(b);
  run.finish();
  return tr;
}

/// The truth on a regular host-time grid: pairs `(host, guest_at(host))` every
/// `step_ns` over `[start, end]` of the trace's bursts (first burst start to
/// last burst end).
struct truth_point {
  std::int64_t host = 0;
  std::int64_t guest = 0;
};
template <class = void>
[[nodiscard]] inline std::vector<truth_point> truth_grid(const trace& tr, std::int64_t step_ns) {
  std::vector<truth_point> out;
  if (tr.bursts.empty() || step_ns <= 0) return out;
  const std::int64_t a = tr.bursts.front().start_ns, z = tr.bursts.back().end_ns;
  for (std::int64_t h = a; h <= z; h += step_ns) out.push_back({h, tr.truth.guest_at(h)});
  return out;
}

}  // namespace tsync::sim
