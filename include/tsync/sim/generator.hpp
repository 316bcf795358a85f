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
  [[nodiscard]] std::vector<probe_sample> burst_probes(std::uint32_t b) const {
    std::vector<probe_sample> out;
    for (const auto& p : probes)
      if (p.burst == b) out.push_back(p);
    return out;
  }
};

/// Independent random streams of one run, derived from its seed.
enum class stream : std::uint64_t { truth = 0, link = 1, stamps = 2, schedule = 3 };

/// Run `sc` with `seed`. Errors: the scenario's `validate()` error, or
/// `errc::overflow` when a time leaves int64.
[[nodiscard]] inline expected<trace, errc> simulate(const scenario& sc, std::uint64_t seed) {
  if (auto e = sc.validate(); e != errc::ok) return unexpected(e);
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

  link_state link(sc.link, derive_seed(seed, static_cast<std::uint64_t>(stream::link)), sc.start_ns);
  rng stamp_rng(derive_seed(seed, static_cast<std::uint64_t>(stream::stamps)));
  rng sched_rng(derive_seed(seed, static_cast<std::uint64_t>(stream::schedule)));
  const stamp_model stamps{&sc.clock};

  struct in_flight {
    std::int64_t arrival;
    std::int64_t g;
    std::int64_t guest_rx;
    std::int64_t send;
    std::uint64_t id;
    bool glitched;
  };
  std::vector<in_flight> pending;
  std::vector<bool> recorded_ids;
  std::uint64_t next_id = 0;
  const std::uint32_t n_bursts = sc.burst_count();
  tr.probes.reserve(static_cast<std::size_t>(n_bursts) * sc.probes_per_burst);
  tr.probe_truths.reserve(tr.probes.capacity());
  recorded_ids.reserve(tr.probes.capacity());

  for (std::uint32_t b = 0; b < n_bursts; ++b) {
    burst_info bi;
    bi.index = b;
    bi.vcpu = b % sc.vcpus;
    const std::int64_t jitter =
        sc.burst_jitter_ns > 0 ? static_cast<std::int64_t>(sched_rng.below(static_cast<std::uint64_t>(sc.burst_jitter_ns)))
                               : 0;
    std::int64_t s = sc.start_ns + static_cast<std::int64_t>(b) * sc.burst_interval_ns + jitter;
    bi.start_ns = s;
    pending.clear();
    for (std::uint32_t k = 0; k < sc.probes_per_burst; ++k) {
      const std::uint64_t id = next_id++;
      recorded_ids.push_back(false);
      ++bi.sent;
      const std::int64_t t1 = stamps.host_stamp(s, stamp_rng);
      // Forward message (and its duplicate): the guest stamps and replies to each copy.
      const delivery fd = link.send(direction::forward, s);
      if (fd) {
        std::int64_t copies[2] = {fd.arrival, fd.duplicate.value_or(0)};
        const int n_copies = fd.duplicate ? 2 : 1;
        for (int c = 0; c < n_copies; ++c) {
          const std::int64_t a = copies[c];
          bool glitched = false;
          const std::int64_t g = stamps.guest_stamp(tr.truth.guest_at(a), stamp_rng, glitched);
          const delivery bd = link.send(direction::backward, a);
          if (bd) {
            pending.push_back({bd.arrival, g, a, s, id, glitched});
            if (bd.duplicate) pending.push_back({*bd.duplicate, g, a, s, id, glitched});
          }
        }
      }
      // Wait for this probe's own reply (at most `timeout`); drop replies that
      // arrived before the wait; record every reply that arrives during it.
      std::erase_if(pending, [s](const in_flight& f) { return f.arrival < s; });
      std::sort(pending.begin(), pending.end(),
                [](const in_flight& x, const in_flight& y) { return x.arrival < y.arrival; });
      std::int64_t wait_end = s + sc.timeout_ns;
      bool got_own = false;
      for (const auto& f : pending) {
        if (f.id == id && f.arrival <= wait_end) {
          wait_end = f.arrival;
          got_own = true;
          break;
        }
      }
      std::size_t taken = 0;
      for (const auto& f : pending) {
        if (f.arrival > wait_end) break;
        ++taken;
        probe_sample p;
        p.t1 = t1;
        p.g = f.g;
        p.t2 = stamps.host_stamp(f.arrival, stamp_rng);
        p.id = f.id;
        p.burst = b;
        p.vcpu = bi.vcpu;
        probe_truth pt;
        pt.sent_id = id;
        pt.send_ns = s;
        pt.guest_rx_ns = f.guest_rx;
        pt.recv_ns = f.arrival;
        pt.glitched = f.glitched;
        const auto idx = static_cast<std::size_t>(f.id);
        if (recorded_ids[idx]) {
          pt.duplicate = true;
          ++tr.stats.duplicates;
        } else if (f.id != id) {
          pt.mispaired = true;
          ++tr.stats.mispaired;
        }
        recorded_ids[idx] = true;
        if (f.glitched) ++tr.stats.glitched;
        tr.probes.push_back(p);
        tr.probe_truths.push_back(pt);
        ++bi.recorded;
        if (got_own && f.id == id && f.arrival == wait_end) break;
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(taken));
      if (!got_own) ++tr.stats.timeouts;
      s = wait_end + sc.probe_gap_ns;
    }
    bi.end_ns = s - sc.probe_gap_ns;
    tr.bursts.push_back(bi);
  }
  tr.stats.sent = next_id;
  tr.stats.recorded = tr.probes.size();
  tr.stats.messages_lost = link.lost();
  return tr;
}

/// The truth on a regular host-time grid: pairs `(host, guest_at(host))` every
/// `step_ns` over `[start, end]` of the trace's bursts (first burst start to
/// last burst end).
struct truth_point {
  std::int64_t host = 0;
  std::int64_t guest = 0;
};
[[nodiscard]] inline std::vector<truth_point> truth_grid(const trace& tr, std::int64_t step_ns) {
  std::vector<truth_point> out;
  if (tr.bursts.empty() || step_ns <= 0) return out;
  const std::int64_t a = tr.bursts.front().start_ns, z = tr.bursts.back().end_ns;
  for (std::int64_t h = a; h <= z; h += step_ns) out.push_back({h, tr.truth.guest_at(h)});
  return out;
}

}  // namespace tsync::sim
