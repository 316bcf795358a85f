#pragma once
/// \file
/// A simulation scenario (clock model + link model + probing schedule) and
/// the named presets of the benchmark (B1–B8 of
/// the estimator reference, plus `frequency_step`).
///
/// Text format (io/scenario_text.hpp): one `key=value` per line; blank lines and lines starting with
/// `#` are ignored; spaces around key and value are ignored. Durations take a
/// unit suffix `ns`, `us`, `ms`, `s`, `m` or `min`, `h` (none = ns; the
/// grammar of io/duration.hpp) and may have a decimal
/// fraction (`2.5ms`); rates are plain decimals; distributions use the text form
/// of `random.hpp` (`exp:2000`, values in ns). Repeatable keys
/// (`clock.offset_step`, `clock.freq_step`, `link.asym_step`) add one step per
/// line. Keys not given keep the defaults of `scenario{}` — or of the preset
/// named by a leading `preset=NAME` line. `to_text` prints every key, and
/// `parse_scenario(to_text(s)) == s`.
///
/// | key | meaning |
/// |---|---|
/// | `preset` | start from this preset (must come first) |
/// | `name`, `description` | free text |
/// | `start` | host time of the trace start |
/// | `duration` | length of the trace (the last burst starts at or before start + duration) |
/// | `burst_interval`, `burst_jitter` | a burst every interval, each delayed by uniform [0, jitter) |
/// | `probes_per_burst` | probes sent per burst (1..1000000) |
/// | `probe_gap` | host pause between a reply (or timeout) and the next probe |
/// | `timeout` | how long the host waits for a reply |
/// | `vcpus` | bursts rotate over this many vCPUs (the `vcpu` field) |
/// | `clock.offset` | host − guest at the start |
/// | `clock.drift_ppm`, `clock.freq_rw_ppb`, `clock.wander_ppm`, `clock.wander_period`, `clock.wander_phase` | frequency model |
/// | `clock.offset_step=AT,DELTA` | the guest reading jumps by DELTA at AT (both durations) |
/// | `clock.freq_step=AT,PPM` | the guest rate changes by PPM at AT |
/// | `clock.knot` | spacing of the truth map's knots |
/// | `clock.host_quantum`, `clock.guest_quantum`, `clock.host_noise`, `clock.guest_noise` | stamp quantisation and σ of stamp noise |
/// | `clock.glitch_prob`, `clock.glitch` | rare guest-stamp glitches and their size |
/// | `link.fwd.min`, `link.fwd.queue`, `link.back.min`, `link.back.queue` | per-direction delays |
/// | `link.loss`, `link.dup`, `link.dup_delay`, `link.reorder`, `link.reorder_delay`, `link.spike`, `link.spike_delay` | impairments |
/// | `link.asym_step=AT,fwd|back,DELTA` | the minimum delay of one direction changes by DELTA at AT |

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/sim/clock_model.hpp"
#include "tsync/sim/link_model.hpp"
#include "tsync/sim/random.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::sim {

/// Everything that defines a simulated run except the seed.
struct scenario {
  std::string name = "custom";
  std::string description{};
  std::int64_t start_ns = 1'000'000'000'000;      ///< host time of the trace start (1000 s)
  std::int64_t duration_ns = 600'000'000'000;     ///< trace length (10 min)
  std::int64_t burst_interval_ns = 10'000'000'000;  ///< a burst every 10 s
  std::int64_t burst_jitter_ns = 0;               ///< each burst starts up to this much later
  std::uint32_t probes_per_burst = 339;           ///< trace-cmd's PTP_SYNC_LOOP
  std::int64_t probe_gap_ns = 2'000;              ///< host pause between a reply and the next probe
  std::int64_t timeout_ns = 2'000'000;            ///< how long the host waits for a reply
  std::uint32_t vcpus = 1;                        ///< bursts rotate over this many vCPUs
  clock_model clock{};
  link_model link{};

  friend bool operator==(const scenario&, const scenario&) = default;

  /// Deprecated (one release): use the free `validate(x)`.
  [[deprecated("use sim::validate(x)")]] [[nodiscard]] errc validate() const noexcept;
  /// Number of bursts: one at the start and one every interval up to the duration.
  [[nodiscard]] std::uint32_t burst_count() const noexcept {
    return static_cast<std::uint32_t>(duration_ns / burst_interval_ns + 1);
  }
  /// The asymmetry floor `(m_f − m_b)/2` (ns) at host time `h` (see
  /// `link_model::asymmetry_floor`).
  [[nodiscard]] double floor_at(std::int64_t h) const noexcept { return link.asymmetry_floor(h - start_ns); }
};

/// `errc::ok` or the first problem (`invalid_argument` for non-positive
/// duration, interval, probe count, vCPU count or timeout; negative jitter or
/// gap; more than 1e6 probes per burst or 1e7 probes in all; otherwise the
/// clock's or link's own error).
[[nodiscard]] inline expected<void, errc> validate(const scenario& x) noexcept {
  const errc e = [&x]() noexcept -> errc {
    if (x.duration_ns <= 0 || x.burst_interval_ns <= 0 || x.probes_per_burst == 0 || x.vcpus == 0 || x.timeout_ns <= 0)
      return errc::invalid_argument;
    if (x.burst_jitter_ns < 0 || x.probe_gap_ns < 0) return errc::invalid_argument;
    if (x.probes_per_burst > 1'000'000) return errc::oversized;
    const u128 bursts = static_cast<u128>(x.duration_ns / x.burst_interval_ns) + 1;
    if (bursts * x.probes_per_burst > 10'000'000) return errc::oversized;
    if (x.start_ns < 0 || x.start_ns > (std::int64_t{1} << 62) || x.duration_ns > (std::int64_t{1} << 60))
      return errc::out_of_range;
    if (auto v = validate(x.clock); !v) return v.error();
    if (x.duration_ns / x.clock.knot_ns >= static_cast<std::int64_t>(truth_map::max_knots)) return errc::oversized;
    if (auto v = validate(x.link); !v) return v.error();
    return errc::ok;
  }();
  if (e != errc::ok) return unexpected(e);
  return {};
}

inline errc scenario::validate() const noexcept {
  const auto v = sim::validate(*this);
  return v ? errc::ok : v.error();
}

// ---------------------------------------------------------------------------
// Presets

/// Names of the presets, in benchmark order: quiet, lopsided_queueing,
/// constant_asymmetry, heavy_tail, drift_wander, clock_step, frequency_step,
/// asymmetry_step, stamp_noise.
template <class = void>
[[nodiscard]] inline const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names{"quiet",      "lopsided_queueing", "constant_asymmetry",
                                              "heavy_tail", "drift_wander",      "clock_step",
                                              "frequency_step", "asymmetry_step", "stamp_noise"};
  return names;
}

/// A preset by name; `errc::not_found` for an unknown name. Each preset has a
/// distinct non-zero initial offset so that sign errors show.
template <class = void>
[[nodiscard]] inline expected<scenario, errc> preset(std::string_view name) {
  constexpr std::int64_t us = 1'000, s = 1'000'000'000;
  scenario sc;
  sc.name = std::string(name);
  sc.clock.offset_ns = 1'234'567'890;  // host − guest: the guest booted ~1.23 s after the host
  sc.link.fwd = {10 * us, exponential(5'000)};
  sc.link.back = {10 * us, exponential(5'000)};
  if (name == "quiet") {
    sc.description = "B1 quiet vsock: m_f = m_b = 10 us, q ~ Exp(2 us) each way, no drift";
    sc.link.fwd.queue = exponential(2'000);
    sc.link.back.queue = exponential(2'000);
  } else if (name == "lopsided_queueing") {
    sc.description = "B2 guest wake-up queueing: q_f ~ Exp(20 us), q_b ~ Exp(2 us), equal minima";
    sc.clock.offset_ns = -987'654'321;
    sc.link.fwd.queue = exponential(20'000);
    sc.link.back.queue = exponential(2'000);
  } else if (name == "constant_asymmetry") {
    sc.description = "B3 constant path asymmetry: m_f = 15 us, m_b = 5 us, q ~ Exp(5 us); floor 5 us";
    sc.link.fwd.min_ns = 15 * us;
    sc.link.back.min_ns = 5 * us;
  } else if (name == "heavy_tail") {
    sc.description =
        "B4 heavy tail and hostile network: q ~ Pareto(1.2, 2 us), 5 ppm drift, 10% probe loss, 1% spikes of "
        "0.1-1 ms, 1% reordered (mis-paired) replies, ~0.5% duplicates";
    sc.clock.drift_ppm = 5;
    sc.link.fwd.queue = pareto(2'000, 1.2);
    sc.link.back.queue = pareto(2'000, 1.2);
    sc.link.loss_prob = 0.05;      // per message: ~10% of probes
    sc.link.spike_prob = 0.005;    // per message: ~1% of probes
    sc.link.reorder_prob = 0.005;  // per message: ~1% of probes have a held-back message
    sc.link.dup_prob = 0.005;      // per message: ~0.5% of records repeat an id
  } else if (name == "drift_wander") {
    sc.description =
        "B5 drift and wander: q ~ Exp(5 us), 32 probes every 10 s for 30 min, 20 ppm + frequency random walk "
        "(Allan deviation ~1e-8 at 1 s) + 0.5 ppm sinusoid of period 600 s";
    sc.clock.offset_ns = 42'000'000'123;
    sc.duration_ns = 1800 * s;
    sc.probes_per_burst = 32;
    sc.clock.drift_ppm = 20;
    sc.clock.freq_rw_ppb = 17.3;  // σ_y(1 s) = rw/√3 ≈ 1e-8
    sc.clock.wander_ppm = 0.5;
    sc.clock.wander_period_ns = 600 * s;
  } else if (name == "clock_step") {
    sc.description = "B6 clock step: q ~ Exp(5 us), the guest clock jumps +100 us at 305 s (between two bursts)";
    sc.clock.offset_steps.push_back({305 * s, 100 * us});
  } else if (name == "frequency_step") {
    sc.description = "B6b frequency step: q ~ Exp(5 us), the guest rate changes by +5 ppm at 305 s (between two bursts)";
    sc.clock.frequency_steps.push_back({305 * s, 5.0});
  } else if (name == "asymmetry_step") {
    sc.description = "B7 asymmetry step: q ~ Exp(5 us), the forward minimum delay grows by 10 us at 305 s (between two bursts)";
    sc.link.asymmetry_steps.push_back({305 * s, direction::forward, 10 * us});
  } else if (name == "stamp_noise") {
    sc.description =
        "B8 stamp noise and glitches: q ~ Exp(5 us), Gaussian noise sigma 200 ns on all stamps, 0.05% of guest "
        "stamps 20 us early";
    sc.clock.host_noise_ns = 200;
    sc.clock.guest_noise_ns = 200;
    sc.clock.glitch_prob = 0.0005;
    sc.clock.glitch_ns = -20 * us;
  } else {
    return unexpected(errc::not_found);
  }
  return sc;
}

/// Deprecated (one release): the text form's parser returns `tsync::text_error`
/// (code, line, field = the key, message).
using parse_error [[deprecated("use tsync::text_error")]] = tsync::text_error;

}  // namespace tsync::sim

// The text form (`to_text`, `parse_scenario`) lives in io/scenario_text.hpp;
// included here so that this header keeps offering it.
#include "tsync/io/scenario_text.hpp"
