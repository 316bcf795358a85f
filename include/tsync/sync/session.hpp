#pragma once
/// \file
/// A continuous synchronization session: what a tracer runs beside its
/// recording to measure, per vCPU, the offset between its clock and a peer's.
///
/// A session drives one or more *channels*. A channel is one probe path to the
/// peer (normally one transport connection) that serves one or more vCPUs; its
/// `series_runner` runs one series of N probes for one vCPU and returns the
/// probe samples (see `make_series_runner` in exchange.hpp for the wire
/// protocol, or write your own). Each channel runs in its own thread, so series
/// for vCPUs on different channels run in parallel; the vCPUs of one channel
/// are probed one after another.
///
/// Life cycle:
/// 1. `start()` launches the channel threads and returns once every vCPU has
///    completed (or failed) its first series: tracing started after `start()`
///    returns is covered by a sample from before its first event.
/// 2. Every `interval`, each channel runs another series per vCPU.
/// 3. `stop()` wakes the channels, runs a last series per vCPU (so the end of
///    the trace is covered too) and joins the threads.
///
/// Each series yields an estimate from the configured estimator (chosen at run
/// time). The estimate, converted to tsync's direction (offset = host − guest,
/// at a guest time) with its hard interval as bounds, is appended to that
/// vCPU's sync table; the series record keeps the statistics. A sample whose
/// offset is exactly 0 is a valid sample and is kept.
///
/// Breaks and whole-trace models (when `track_segments` is on; with a guest
/// initiator the probes are first put in the registry's convention,
/// `from_guest_initiator`): every series' probes go through a
/// `whole_trace_tracker` (sync/whole_trace.hpp) that finds clock steps,
/// backward time and frequency steps as the probes arrive, numbers the
/// segments between breaks, and keeps a bounded reduction of each segment's
/// probes. The per-series estimator sees only the probes of the series' last
/// segment; table entries carry their segment (`vcpu_result::table_segments`),
/// breaks are in `vcpu_result::breaks` and reported through `on_break`, and
/// `models()` fits `whole_trace.estimator` to each segment after `stop()`.
/// `add_break` records a break found by other means (a changed boot identity).
///
/// Failure behaviour: a failed series (timeout, protocol error, estimator
/// error) is recorded with its error and the session goes on; its probes, if
/// any arrived, still feed an estimate because every probe is causally valid on
/// its own. A lost peer (`peer_closed`, broken pipe, reset) ends that channel
/// cleanly: everything collected so far is kept and `stop()` still returns
/// promptly.
///
/// Thread safety: `start`, `stop`, `results`, `rounds_completed`,
/// `wait_for_rounds` may be called from any thread; `on_series` callbacks run on
/// channel threads (one at a time per channel, concurrently across channels).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <sched.h>
#include <unistd.h>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/clock/clock_source.hpp"
#include "tsync/estimate/registry.hpp"
#include "tsync/probe/exchange.hpp"
#include "tsync/sync/whole_trace.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::sync {

/// The default number of probes per series (as trace-cmd's PTP_SYNC_LOOP).
inline constexpr std::uint32_t default_series_probes = 339;

/// What one series produced: the probes that completed and, if the series did
/// not finish, why. Probes are kept even when `error` is set.
struct series_outcome {
  series_outcome() = default;
  series_outcome(std::vector<probe_sample> p, std::error_code e, std::optional<probe::peer_identity> who = std::nullopt,
                 bool again = false)
      : probes(std::move(p)), error(e), peer(std::move(who)), reconnected(again) {}
  std::vector<probe_sample> probes;
  std::error_code error;
  /// Who answered the series (from the `hello` before it), when the runner knows.
  /// A change of boot id or nonce between two series of a vCPU means another
  /// boot or process answered (`probe::identity_change`).
  std::optional<probe::peer_identity> peer;
  /// The peer went away during the series but the runner connected again: the
  /// channel goes on (the next series' `hello` tells whether it is the same peer).
  bool reconnected = false;
};

/// Runs one series of `probes` probes for `vcpu`, with the session-unique id
/// `series_id`. Called only from its channel's thread.
using series_runner =
    std::function<series_outcome(std::uint32_t series_id, std::uint32_t vcpu, std::uint32_t probes)>;

/// One series' offset estimate in the probe exchange's own terms: `offset` is
/// responder − initiator at initiator time `at`, and the truth lies, by
/// causality alone, in `[lo, hi]` (`lo <= offset <= hi`). Raw integers, like
/// `probe_sample`: which side is the host is known only at run time
/// (`session_config::initiator_is_host`); `to_sync_sample` turns an estimate
/// into typed guest→host terms, and the session's tables are typed.
struct series_estimate {
  std::int64_t offset = 0;
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  std::int64_t at = 0;              ///< initiator time the estimate holds at
  std::size_t used = 0;             ///< probes the estimator used
  std::size_t rejected = 0;         ///< probes it rejected (e.g. causality violations)
  std::int64_t min_rtt = 0;         ///< smallest round trip t2 − t1 of the series
  std::int64_t median_rtt = 0;      ///< median round trip of the series
  std::string estimator;            ///< name of the estimator that produced it
};

/// An estimator: probes of one series → estimate (or an error).
using estimator_fn = std::function<expected<series_estimate, std::error_code>(std::span<const probe_sample>)>;

/// Round-trip statistics of a series: fills `min_rtt` and `median_rtt` of `e`
/// from the causally valid probes (t2 >= t1).
inline void fill_rtt_stats(std::span<const probe_sample> probes, series_estimate& e) {
  std::vector<std::int64_t> rtts;
  rtts.reserve(probes.size());
  for (const auto& p : probes) {
    if (p.t2 >= p.t1) rtts.push_back(p.t2 - p.t1);
  }
  if (rtts.empty()) return;
  std::sort(rtts.begin(), rtts.end());
  e.min_rtt = rtts.front();
  e.median_rtt = rtts[rtts.size() / 2];
}

}  // namespace tsync::sync

namespace tsync::inline TSYNC_ABI::detail {
/// The registry estimator `name` as a session `estimator_fn` (name and options
/// already checked by the caller).
[[nodiscard]] inline sync::estimator_fn registry_estimator(std::string name, estimate::fit_options opt) {
  using sync::series_estimate;
  return sync::estimator_fn([name = std::move(name), opt](std::span<const probe_sample> probes)
                                -> expected<series_estimate, std::error_code> {
    auto m = estimate::fit(name, probes, opt);
    if (!m) return unexpected(make_error_code(m.error()));
    if (m->segments.empty()) return unexpected(make_error_code(errc::empty_input));
    const auto& seg = m->segments.front();
    const std::int64_t ref = seg.ref;
    // The model maps the responder's clock (its "guest" side) onto the
    // initiator's (its "host" side), whichever of them is the real host.
    auto off = m->offset_at(at_ns<guest>(ref));   // initiator - responder at responder time ref
    auto hb = m->hard_bounds(at_ns<guest>(ref));  // initiator times possible at ref
    if (!off) return unexpected(make_error_code(off.error()));
    if (!hb) return unexpected(make_error_code(hb.error()));
    const auto at = checked_add(ref, off->count());
    const auto lo = checked_sub(ref, raw_ns(hb->hi));  // responder - initiator, lower bound
    const auto hi = checked_sub(ref, raw_ns(hb->lo));
    if (!at || !lo || !hi) return unexpected(make_error_code(errc::overflow));
    series_estimate e;
    e.offset = -off->count();
    e.at = *at;
    // An estimate outside its own hard interval is a defect of the estimator,
    // never hidden by widening the interval: the series fails instead.
    if (e.offset < *lo || e.offset > *hi) return unexpected(make_error_code(errc::infeasible));
    e.lo = *lo;
    e.hi = *hi;
    e.used = static_cast<std::size_t>(seg.diag.stats.probes_used);
    e.rejected = static_cast<std::size_t>(seg.diag.stats.probes_rejected);
    e.estimator = m->estimator;
    sync::fill_rtt_stats(probes, e);
    return e;
  });
}
}  // namespace tsync::detail

namespace tsync::inline TSYNC_ABI::sync {

/// An estimator from the `tsync::estimate` registry, chosen by name at run time
/// (`tsync::estimate::names()` lists them: fastest_response, histogram_peak,
/// median, split_envelope, convex_hull, segmented, and regression when built
/// with Eigen). The series' probes are fitted as one burst; the estimate is read
/// at the model's reference time with its hard interval. Errors:
/// `errc::not_found` for an unknown name, `errc::invalid_argument` /
/// `errc::non_finite` for bad options.
///
/// Conversion: the registry reads a probe's t1/t2 as the clock the model maps
/// onto and g as the other, so its offset at responder time `ref` is
/// initiator − responder; the session's estimate is the negation, at initiator
/// time `ref + offset`, whichever side is the host.
[[nodiscard]] inline expected<estimator_fn, std::error_code> named_estimator(std::string name,
                                                                             estimate::fit_options opt = {}) {
  bool known = false;
  for (auto n : estimate::names()) known = known || n == name;
  if (!known) return unexpected(make_error_code(errc::not_found));
  if (auto v = estimate::validate(opt); !v) return unexpected(make_error_code(v.error()));
  return tsync::detail::registry_estimator(std::move(name), opt);
}

/// The session's default estimator: the registry's `fastest_response` (the
/// same model `tsync estimate --estimator fastest_response` fits), read as
/// `named_estimator` reads every registry estimator. There is one estimator
/// per name: the session has no fastest-response of its own.
[[nodiscard]] inline estimator_fn default_estimator() {
  return tsync::detail::registry_estimator("fastest_response", estimate::fit_options{});
}

/// Pin the calling thread to `cpu` (what a responder does when a series for
/// that vCPU starts). Errors: `errc::not_found` if the CPU does not exist,
/// otherwise the `errno` of `sched_setaffinity` (e.g. `EINVAL` when a cpuset
/// excludes it). Callers treat failure as a warning, never as fatal.
[[nodiscard]] inline expected<void, std::error_code> pin_current_thread(std::uint32_t cpu) noexcept {
  const long ncpu = ::sysconf(_SC_NPROCESSORS_CONF);
  if (ncpu <= 0 || cpu >= static_cast<unsigned long>(ncpu) || cpu >= CPU_SETSIZE)
    return unexpected(make_error_code(errc::not_found));
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) return unexpected(std::error_code(errno, std::system_category()));
  return {};
}

/// True for the errors that mean the peer is gone for good (as opposed to one
/// failed series): `errc::peer_closed`, broken pipe, connection reset/aborted,
/// not connected.
[[nodiscard]] inline bool is_peer_lost(const std::error_code& ec) noexcept {
  if (!ec) return false;
  if (ec == make_error_code(errc::peer_closed)) return true;
  return ec == std::errc::broken_pipe || ec == std::errc::connection_reset || ec == std::errc::connection_aborted ||
         ec == std::errc::not_connected;
}

/// A `series_runner` that runs the wire protocol (`run_series`) over transport
/// `t`, stamping t1 and t2 with `clock`. `base` supplies the timeouts and flags;
/// its `series_id`, `vcpu` and `probes` are replaced per series. The transport
/// and clock are captured by reference and must outlive the session; the runner
/// is called only from its channel's thread, so one transport per channel.
template <transport::message_transport T, clock::clock_source C>
[[nodiscard]] series_runner make_series_runner(T& t, C& clock, probe::series_config base = {}) {
  return [&t, &clock, base](std::uint32_t id, std::uint32_t vcpu, std::uint32_t n) {
    probe::series_config c = base;
    c.series_id = id;
    c.vcpu = vcpu;
    c.probes = n;
    probe::series_result r = probe::run_series(t, clock, c);
    return series_outcome{std::move(r.probes), r.error};
  };
}

/// Options of `make_identified_series_runner`.
struct identified_runner_options {
  probe::peer_identity mine;       ///< this side's identity, sent in every `hello`
  bool initiator_is_host = true;   ///< which side `mine` is (for `clock_mismatch`)
  std::chrono::nanoseconds hello_timeout = std::chrono::seconds(5);  ///< per series
  /// Reopen the transport after the peer went away (agent restart, guest reboot);
  /// true when it is connected again. Empty: a lost peer ends the channel.
  std::function<bool()> reconnect;
  /// Told, once per distinct text, why a series could not start (version, clock mismatch,
  /// no answer), and when another boot or process of the peer answers (`probe::identity_change`).
  std::function<void(const std::string&)> report;
};

/// A `series_runner` like `make_series_runner` that runs the `hello` handshake
/// (`probe::exchange_hello`) before every series: the outcome carries the peer's
/// identity (so the session sees a reboot or an agent restart as a `reboot`
/// break), a clock mismatch fails the series with `errc::unsupported` before any
/// probe, and a peer that went away is reconnected through `o.reconnect`.
template <transport::message_transport T, clock::clock_source C>
[[nodiscard]] series_runner make_identified_series_runner(T& t, C& clock, probe::series_config base,
                                                          identified_runner_options o) {
  struct state {
    identified_runner_options o;
    std::string last_report;
    bool broken = false;  // the transport was lost and not reopened yet
    std::optional<probe::peer_identity> last_peer;
  };
  auto st = std::make_shared<state>(state{std::move(o), {}, false, std::nullopt});
  return [&t, &clock, base, st](std::uint32_t id, std::uint32_t vcpu, std::uint32_t n) -> series_outcome {
    auto say = [&](const std::string& text) {
      if (text != st->last_report && st->o.report) st->o.report(text);
      st->last_report = text;
    };
    auto reopen = [&] {
      st->broken = !(st->o.reconnect && st->o.reconnect());
      return !st->broken;
    };
    if (st->broken && !reopen()) return series_outcome{{}, make_error_code(errc::peer_closed), std::nullopt, false};
    auto h = probe::exchange_hello(t, st->o.mine, transport::after(st->o.hello_timeout));
    if (!h.ok() && is_peer_lost(h.error) && reopen())
      h = probe::exchange_hello(t, st->o.mine, transport::after(st->o.hello_timeout));
    if (!h.ok()) {
      say(h.message);
      const bool lost = is_peer_lost(h.error);
      if (lost && st->o.reconnect) st->broken = true;
      return series_outcome{{}, h.error, std::nullopt, lost && st->o.reconnect};
    }
    if (st->last_peer) {
      if (auto change = probe::identity_change(*st->last_peer, *h.peer))
        say(*change + ", seen before series " + std::to_string(id) + " (vCPU " + std::to_string(vcpu) + ")");
    }
    st->last_peer = h.peer;
    const auto& host_side = st->o.initiator_is_host ? st->o.mine : *h.peer;
    const auto& guest_side = st->o.initiator_is_host ? *h.peer : st->o.mine;
    if (auto why = probe::clock_mismatch(host_side, guest_side)) {
      say(*why);
      return series_outcome{{}, make_error_code(errc::unsupported), h.peer, false};
    }
    probe::series_config c = base;
    c.series_id = id;
    c.vcpu = vcpu;
    c.probes = n;
    probe::series_result r = probe::run_series(t, clock, c);
    series_outcome out{std::move(r.probes), r.error, h.peer, false};
    if (is_peer_lost(r.error) && st->o.reconnect) {
      st->broken = true;
      out.reconnected = true;  // the next series reopens (or ends the channel)
    }
    return out;
  };
}

/// An `on_series_start` callback for `responder_options` that pins the serving
/// thread to the series' vCPU. A failure to pin never refuses the series: it is
/// passed to `report` (which may be empty) and the probes run unpinned.
[[nodiscard]] inline std::function<std::error_code(const probe::start_msg&)> pin_on_series_start(
    std::function<void(std::uint32_t vcpu, std::error_code)> report = {}) {
  return [report = std::move(report)](const probe::start_msg& s) -> std::error_code {
    auto r = pin_current_thread(s.vcpu);
    if (!r && report) report(s.vcpu, r.error());
    return {};
  };
}

/// One probe path to the peer and the vCPUs it serves (probed in this order).
struct channel {
  std::vector<std::uint32_t> vcpus;
  series_runner run;
};

/// The record of one series, successful or not.
struct series_record {
  std::uint32_t series_id = 0;
  std::uint32_t vcpu = 0;
  std::uint32_t round = 0;              ///< 0 for the first series of the vCPU
  bool final = false;                   ///< the series run by stop()
  std::uint32_t probes_requested = 0;
  std::size_t probes_received = 0;
  std::error_code error;                ///< transport/protocol error, else the estimator's error; empty if ok
  std::optional<series_estimate> estimate;
  std::optional<std::size_t> table_index; ///< index of its entry in the vCPU's sync table
  std::uint32_t segment = 0;            ///< segment of its estimate (its last probes' segment)
  std::chrono::nanoseconds duration{0}; ///< wall time the series took (steady clock)
  [[nodiscard]] bool ok() const noexcept { return !error && estimate.has_value(); }
};

/// Everything collected for one vCPU.
struct vcpu_result {
  std::uint32_t vcpu = 0;
  std::vector<sync_sample> table;       ///< guest→host sync table, in series order
  std::vector<series_record> series;    ///< every series, failed ones included
  std::vector<std::uint32_t> table_segments; ///< segment of each table entry (same length as `table`)
  std::vector<estimate::clock_break> breaks; ///< breaks found, in order (segment ids start at 0)
  std::size_t dropped_probes = 0;       ///< glitched probes the break detector dropped
  bool peer_lost = false;               ///< the channel ended because the peer went away
  std::error_code end_error;            ///< the error that ended the channel, if any
  std::optional<probe::peer_identity> peer;  ///< the identity of the latest peer that answered, if known
};

/// Configuration of a session.
struct session_config {
  std::uint32_t probes = default_series_probes; ///< probes per series (>= 1)
  /// Pause between the end of one round and the start of the next; zero means
  /// "only the first series and the last one at stop()".
  std::chrono::nanoseconds interval = std::chrono::seconds(1);
  /// Rounds each channel runs before it only waits for `stop()` (the first round
  /// counts; the last series at stop comes on top). 0: no limit. With
  /// `rounds = N - 1`, every vCPU gets exactly N series when stopped after
  /// `wait_for_rounds(N - 1)`, even when channels run at different speeds.
  std::uint32_t max_rounds = 0;
  /// True when the initiator (this side, stamping t1 and t2) is the host and the
  /// responder the guest; false for the reverse. Decides the sign of table offsets.
  bool initiator_is_host = true;
  /// The estimator; empty means `default_estimator()` (the registry's `fastest_response`).
  estimator_fn estimator;
  /// Estimate from the probes of a series that failed part-way (they are causally valid).
  bool use_partial_series = true;
  /// Called on a channel thread after each series is recorded.
  std::function<void(const series_record&)> on_series;
  /// Break detection and the whole-trace model (sync/whole_trace.hpp), with
  /// either side as the initiator. `whole_trace.estimator` empty: detect
  /// breaks and segment the table, but fit no whole-trace model.
  bool track_segments = true;
  whole_trace_options whole_trace{};
  /// Called on a channel thread with every series' probes and the segment of
  /// each (`whole_trace_tracker::npos` for a dropped glitch), before `on_series`.
  std::function<void(const series_record&, std::span<const probe_sample>, std::span<const std::uint32_t>)> on_probes;
  /// Called on a channel thread for every break, as it is found.
  std::function<void(const estimate::clock_break&)> on_break;
};

/// The whole-trace model of one vCPU (see `session::models`).
struct vcpu_model {
  std::uint32_t vcpu = 0;
  expected<session_model, errc> model = unexpected(errc::empty_input);
  std::vector<std::pair<std::uint32_t, errc>> failures;  ///< segments whose fit failed
};

/// What `start()` reports once the first round is done.
struct ready_report {
  std::size_t vcpus = 0;         ///< vCPUs in the session
  std::size_t synchronized = 0;  ///< of which the first series gave a table entry
  std::vector<series_record> first_series; ///< the first series of every vCPU
};

/// Convert a series estimate (responder − initiator) into a sync table entry
/// (host − guest at a guest time, typed), with the hard interval as bounds.
[[nodiscard]] inline sync_sample to_sync_sample(const series_estimate& e, bool initiator_is_host) noexcept {
  sync_sample s;
  if (initiator_is_host) {
    s.guest_time = at_ns<guest>(e.at + e.offset);  // the responder (guest) reading at that instant
    s.offset = guest_to_host(-e.offset);
    s.bounds = offset_interval{e.offset - e.hi, e.offset - e.lo};
  } else {
    s.guest_time = at_ns<guest>(e.at);
    s.offset = guest_to_host(e.offset);
    s.bounds = offset_interval{e.lo - e.offset, e.hi - e.offset};
  }
  return s;
}

/// A continuous per-vCPU sync session (see the file comment). Not copyable or
/// movable; create with `make_session`.
class session {
 public:
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session() { stop(); }

  /// Launch the channels and wait for the first series of every vCPU.
  /// Errors: `errc::invalid_argument` if called twice; `errc::io_error` if a
  /// thread cannot be created; the first series' error if no vCPU at all got a
  /// table entry (the session is then stopped, its records kept).
  [[nodiscard]] expected<ready_report, std::error_code> start() {
    {
      std::lock_guard lk(mu_);
      if (state_ != state::idle) return unexpected(make_error_code(errc::invalid_argument));
      state_ = state::running;
    }
    try {
      threads_.reserve(channels_.size());
      for (std::size_t c = 0; c < channels_.size(); ++c) threads_.emplace_back([this, c] { run_channel(c); });
    } catch (...) {
      stop();
      return unexpected(make_error_code(errc::io_error));
    }
    ready_report rep;
    {
      std::unique_lock lk(mu_);
      cv_ready_.wait(lk, [&] { return first_done_ == channels_.size(); });
      rep.vcpus = results_.size();
      for (auto& r : results_) {
        if (!r.series.empty()) {
          rep.first_series.push_back(r.series.front());
          if (r.series.front().table_index) ++rep.synchronized;
        }
      }
    }
    if (rep.synchronized == 0) {
      std::error_code ec = make_error_code(errc::empty_input);
      for (auto& s : rep.first_series) {
        if (s.error) {
          ec = s.error;
          break;
        }
      }
      stop();
      return unexpected(ec);
    }
    return rep;
  }

  /// Run the last series of every vCPU whose peer is still there, then join
  /// the channel threads. Idempotent; returns at once if never started.
  void stop() {
    {
      std::lock_guard lk(mu_);
      if (state_ == state::running) state_ = state::stopping;
      stop_requested_ = true;
    }
    cv_stop_.notify_all();
    {
      std::lock_guard jl(join_mu_);
      for (auto& t : threads_) {
        if (t.joinable()) t.join();
      }
    }
    std::lock_guard lk(mu_);
    state_ = state::stopped;
  }

  /// A copy of everything collected so far (consistent: taken under the lock).
  [[nodiscard]] std::vector<vcpu_result> results() const {
    std::lock_guard lk(mu_);
    return results_;
  }

  /// The sync table of one vCPU so far (empty for an unknown vCPU).
  [[nodiscard]] std::vector<sync_sample> table(std::uint32_t vcpu) const {
    std::lock_guard lk(mu_);
    for (auto& r : results_) {
      if (r.vcpu == vcpu) return r.table;
    }
    return {};
  }

  /// Number of rounds every live channel has completed (the first round counts).
  [[nodiscard]] std::uint32_t rounds_completed() const {
    std::lock_guard lk(mu_);
    return min_rounds_locked();
  }

  /// Wait until every live channel completed `n` rounds, every channel ended,
  /// or `timeout` passed; returns true in the first two cases.
  [[nodiscard]] bool wait_for_rounds(std::uint32_t n, std::chrono::nanoseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_round_.wait_for(lk, timeout, [&] { return min_rounds_locked() >= n; });
  }

  /// True while at least one channel is still talking to its peer.
  [[nodiscard]] bool running() const {
    std::lock_guard lk(mu_);
    return state_ == state::running && live_channels_ > 0;
  }

  [[nodiscard]] const session_config& config() const noexcept { return cfg_; }

  /// True when the session detects breaks and segments (either side may
  /// initiate: a guest initiator's probes are turned into the registry's
  /// convention with `from_guest_initiator`).
  [[nodiscard]] bool tracking() const noexcept { return cfg_.track_segments; }

  /// Fit the whole-trace model of every vCPU (one fit per segment, from the
  /// bounded probe reduction). Call after `stop()`; empty when not tracking or
  /// no whole-trace estimator is configured.
  [[nodiscard]] std::vector<vcpu_model> models() const {
    std::vector<vcpu_model> out;
    if (!tracking() || cfg_.whole_trace.estimator.empty()) return out;
    for (std::size_t i = 0; i < results_.size(); ++i) {
      std::lock_guard lk(trackers_[i]->mu);
      vcpu_model m;
      m.vcpu = results_[i].vcpu;
      m.model = trackers_[i]->t.fit(&m.failures);
      out.push_back(std::move(m));
    }
    return out;
  }

  /// Record a break found outside the probes (e.g. the peer's boot identity
  /// changed) for `vcpu`: its next probes start a new segment. The break's
  /// `segment` is assigned here; it is reported through `on_break`.
  void add_break(std::uint32_t vcpu, estimate::clock_break b) {
    if (!tracking()) return;
    for (std::size_t i = 0; i < results_.size(); ++i) {
      if (results_[i].vcpu != vcpu) continue;
      b.vcpu = vcpu;
      {
        std::lock_guard tl(trackers_[i]->mu);
        b = trackers_[i]->t.add_break(std::move(b));
      }
      {
        std::lock_guard lk(mu_);
        results_[i].breaks.push_back(b);
      }
      if (cfg_.on_break) cfg_.on_break(b);
    }
  }

 private:
  friend expected<std::unique_ptr<session>, std::error_code> make_session(std::vector<channel>, session_config);
  enum class state : std::uint8_t { idle, running, stopping, stopped };

  session(std::vector<channel> ch, session_config cfg) : channels_(std::move(ch)), cfg_(std::move(cfg)) {
    if (!cfg_.estimator) cfg_.estimator = default_estimator();
    rounds_.assign(channels_.size(), 0);
    ended_.assign(channels_.size(), false);
    live_channels_ = channels_.size();
    for (auto& c : channels_) {
      for (auto v : c.vcpus) {
        vcpu_result r;
        r.vcpu = v;
        results_.push_back(std::move(r));
        trackers_.push_back(std::make_unique<tracker_slot>(cfg_.whole_trace));
        last_probe_.emplace_back();
      }
    }
  }

  [[nodiscard]] std::uint32_t min_rounds_locked() const {
    std::uint32_t m = std::numeric_limits<std::uint32_t>::max();
    for (std::size_t c = 0; c < channels_.size(); ++c) {
      if (!ended_[c]) m = std::min(m, rounds_[c]);
    }
    return m;
  }

  vcpu_result& result_of_locked(std::uint32_t vcpu) {
    for (auto& r : results_) {
      if (r.vcpu == vcpu) return r;
    }
    return results_.front();  // unreachable: vCPUs are validated by make_session
  }

  [[nodiscard]] std::size_t index_of(std::uint32_t vcpu) const noexcept {
    for (std::size_t i = 0; i < results_.size(); ++i)
      if (results_[i].vcpu == vcpu) return i;
    return 0;
  }

  /// `p` in the registry's convention (t1, t2 host; g guest).
  [[nodiscard]] probe_sample registry_probe(const probe_sample& p) const noexcept {
    return cfg_.initiator_is_host ? p : from_guest_initiator(p, cfg_.whole_trace.fit.max_drift);
  }

  /// Segment the series' probes (break detection); returns the probes of its
  /// last segment (what the per-series estimator sees) and records breaks.
  std::vector<probe_sample> track(std::uint32_t vcpu, series_record& rec, const std::vector<probe_sample>& probes) {
    if (!tracking()) {
      if (cfg_.on_probes) cfg_.on_probes(rec, probes, std::vector<std::uint32_t>(probes.size(), 0));
      return probes;
    }
    auto& slot = *trackers_[index_of(vcpu)];
    std::vector<std::uint32_t> seg;
    std::vector<estimate::clock_break> found;
    std::size_t dropped = 0;
    {
      std::lock_guard tl(slot.mu);
      if (cfg_.initiator_is_host) {
        found = slot.t.add_series(probes, &seg);
      } else {
        std::vector<probe_sample> mirrored;
        mirrored.reserve(probes.size());
        for (const auto& p : probes) mirrored.push_back(registry_probe(p));
        found = slot.t.add_series(mirrored, &seg);
      }
      rec.segment = slot.t.current_segment();
      dropped = slot.t.dropped();
    }
    {
      std::lock_guard lk(mu_);
      auto& r = result_of_locked(vcpu);
      r.breaks.insert(r.breaks.end(), found.begin(), found.end());
      r.dropped_probes = dropped;
    }
    if (cfg_.on_break)
      for (const auto& b : found) cfg_.on_break(b);
    if (cfg_.on_probes) cfg_.on_probes(rec, probes, seg);
    std::vector<probe_sample> last;
    for (std::size_t i = 0; i < probes.size(); ++i)
      if (seg[i] == rec.segment) last.push_back(probes[i]);
    return last;
  }

  /// Another boot or process of the peer answered this series (its `hello`
  /// said so, `probe::identity_change`): a `reboot` break before its probes,
  /// so that two boots are never joined into one segment.
  void note_identity(std::uint32_t vcpu, const series_record& rec, const series_outcome& out) {
    if (!out.peer) return;
    std::optional<probe::peer_identity> before;
    std::optional<probe_sample> last;
    {
      std::lock_guard lk(mu_);
      auto& r = result_of_locked(vcpu);
      before = r.peer;
      r.peer = out.peer;
      last = last_probe_[index_of(vcpu)];
    }
    if (!before) return;
    auto why = probe::identity_change(*before, *out.peer);
    if (!why) return;
    estimate::clock_break b;
    b.kind = estimate::break_kind::reboot;
    b.series = rec.series_id;
    b.reason = *why;
    if (last) {
      const probe_sample l = registry_probe(*last);
      b.guest_before = l.g;
      b.host_before = l.t2;
    }
    if (!out.probes.empty()) {
      const probe_sample f = registry_probe(out.probes.front());
      b.guest_after = f.g;
      b.host_after = f.t1;
    }
    add_break(vcpu, std::move(b));
  }

  /// Run one series; record it; return its error (for peer-loss detection).
  std::error_code run_one(channel& ch, std::uint32_t vcpu, std::uint32_t round, bool final) {
    series_record rec;
    rec.series_id = next_series_id_.fetch_add(1, std::memory_order_relaxed);
    rec.vcpu = vcpu;
    rec.round = round;
    rec.final = final;
    rec.probes_requested = cfg_.probes;
    const auto t0 = std::chrono::steady_clock::now();
    series_outcome out = ch.run(rec.series_id, vcpu, cfg_.probes);
    rec.duration = std::chrono::steady_clock::now() - t0;
    rec.probes_received = out.probes.size();
    rec.error = out.error;
    note_identity(vcpu, rec, out);
    const std::vector<probe_sample> mine = track(vcpu, rec, out.probes);
    std::optional<sync_sample> sample;
    if (!mine.empty() && (!out.error || cfg_.use_partial_series)) {
      auto est = cfg_.estimator(std::span<const probe_sample>(mine));
      if (est) {
        if (est->min_rtt == 0 && est->median_rtt == 0) fill_rtt_stats(mine, *est);
        sample = to_sync_sample(*est, cfg_.initiator_is_host);
        rec.estimate = std::move(*est);
      } else if (!rec.error) {
        rec.error = est.error();
      }
    } else if (!out.error) {
      rec.error = make_error_code(errc::empty_input);
    }
    {
      std::lock_guard lk(mu_);
      auto& r = result_of_locked(vcpu);
      if (!out.probes.empty()) last_probe_[index_of(vcpu)] = out.probes.back();
      if (sample) {
        rec.table_index = r.table.size();
        r.table.push_back(*sample);
        r.table_segments.push_back(rec.segment);
      }
      r.series.push_back(rec);
    }
    if (cfg_.on_series) cfg_.on_series(rec);
    return out.reconnected ? std::error_code{} : out.error;
  }

  void mark_lost(std::size_t c, const std::error_code& ec) {
    std::lock_guard lk(mu_);
    for (auto v : channels_[c].vcpus) {
      auto& r = result_of_locked(v);
      r.peer_lost = true;
      r.end_error = ec;
    }
  }

  void run_channel(std::size_t c) {
    channel& ch = channels_[c];
    bool lost = false;
    auto run_round = [&](std::uint32_t round, bool final) {
      for (auto v : ch.vcpus) {
        auto ec = run_one(ch, v, round, final);
        if (is_peer_lost(ec)) {
          mark_lost(c, ec);
          lost = true;
          return;
        }
      }
    };
    std::uint32_t round = 0;
    run_round(round, false);
    {
      std::lock_guard lk(mu_);
      ++first_done_;
      rounds_[c] = 1;
      if (lost) {
        ended_[c] = true;
        --live_channels_;
      }
    }
    cv_ready_.notify_all();
    cv_round_.notify_all();
    while (!lost) {
      bool stopping = false;
      {
        std::unique_lock lk(mu_);
        const bool capped = cfg_.max_rounds != 0 && round + 1 >= cfg_.max_rounds;
        if (cfg_.interval.count() > 0 && !capped) {
          cv_stop_.wait_for(lk, cfg_.interval, [&] { return stop_requested_; });
        } else {
          cv_stop_.wait(lk, [&] { return stop_requested_; });
        }
        stopping = stop_requested_;
      }
      ++round;
      run_round(round, stopping);
      {
        std::lock_guard lk(mu_);
        rounds_[c] = round + 1;
        if (lost || stopping) {
          ended_[c] = true;
          --live_channels_;
        }
      }
      cv_round_.notify_all();
      if (stopping) break;
    }
  }

  std::vector<channel> channels_;
  session_config cfg_;
  mutable std::mutex mu_;
  std::mutex join_mu_;  // serializes joining when stop() races with itself
  std::condition_variable cv_ready_, cv_stop_, cv_round_;
  state state_ = state::idle;
  bool stop_requested_ = false;
  std::size_t first_done_ = 0;
  std::size_t live_channels_ = 0;
  std::vector<std::uint32_t> rounds_;
  std::vector<bool> ended_;
  std::vector<vcpu_result> results_;
  std::vector<std::optional<probe_sample>> last_probe_;  // parallel to results_: the last probe received
  struct tracker_slot {
    explicit tracker_slot(const whole_trace_options& o) : t(o) {}
    mutable std::mutex mu;
    whole_trace_tracker t;
  };
  std::vector<std::unique_ptr<tracker_slot>> trackers_;  // parallel to results_
  std::atomic<std::uint32_t> next_series_id_{1};
  std::vector<std::thread> threads_;
};

/// Create a session. Errors (`errc::invalid_argument`): no channel, a channel
/// without vCPUs or without a runner, a vCPU served twice, `probes == 0`, a
/// negative interval.
[[nodiscard]] inline expected<std::unique_ptr<session>, std::error_code> make_session(std::vector<channel> channels,
                                                                                      session_config cfg) {
  const auto bad = make_error_code(errc::invalid_argument);
  if (channels.empty() || cfg.probes == 0 || cfg.interval.count() < 0) return unexpected(bad);
  std::set<std::uint32_t> seen;
  for (auto& c : channels) {
    if (c.vcpus.empty() || !c.run) return unexpected(bad);
    for (auto v : c.vcpus) {
      if (!seen.insert(v).second) return unexpected(bad);
    }
  }
  return std::unique_ptr<session>(new session(std::move(channels), std::move(cfg)));
}

}  // namespace tsync::sync
