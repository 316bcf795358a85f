#pragma once
/// \file
/// A simulation scenario (clock model + link model + probing schedule), its
/// `key=value` text format, and the named presets of the benchmark (B1–B8 of
/// the estimator reference, plus `frequency_step`).
///
/// Text format: one `key=value` per line; blank lines and lines starting with
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
#include <charconv>
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
#include "tsync/io/text.hpp"
#include "tsync/core/config.hpp"
#include "tsync/io/duration.hpp"

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

  /// `errc::ok` or the first problem (`invalid_argument` for non-positive
  /// duration, interval, probe count, vCPU count or timeout; negative jitter or
  /// gap; more than 1e6 probes per burst or 1e7 probes in all; otherwise the
  /// clock's or link's own error).
  [[nodiscard]] errc validate() const noexcept {
    if (duration_ns <= 0 || burst_interval_ns <= 0 || probes_per_burst == 0 || vcpus == 0 || timeout_ns <= 0)
      return errc::invalid_argument;
    if (burst_jitter_ns < 0 || probe_gap_ns < 0) return errc::invalid_argument;
    if (probes_per_burst > 1'000'000) return errc::oversized;
    const u128 bursts = static_cast<u128>(duration_ns / burst_interval_ns) + 1;
    if (bursts * probes_per_burst > 10'000'000) return errc::oversized;
    if (start_ns < 0 || start_ns > (std::int64_t{1} << 62) || duration_ns > (std::int64_t{1} << 60))
      return errc::out_of_range;
    if (auto e = clock.validate(); e != errc::ok) return e;
    if (duration_ns / clock.knot_ns >= static_cast<std::int64_t>(truth_map::max_knots)) return errc::oversized;
    return link.validate();
  }
  /// Number of bursts: one at the start and one every interval up to the duration.
  [[nodiscard]] std::uint32_t burst_count() const noexcept {
    return static_cast<std::uint32_t>(duration_ns / burst_interval_ns + 1);
  }
  /// The asymmetry floor `(m_f − m_b)/2` (ns) at host time `h` (see
  /// `link_model::asymmetry_floor`).
  [[nodiscard]] double floor_at(std::int64_t h) const noexcept { return link.asymmetry_floor(h - start_ns); }
};

// ---------------------------------------------------------------------------
// Presets

/// Names of the presets, in benchmark order: quiet, lopsided_queueing,
/// constant_asymmetry, heavy_tail, drift_wander, clock_step, frequency_step,
/// asymmetry_step, stamp_noise.
[[nodiscard]] inline const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names{"quiet",      "lopsided_queueing", "constant_asymmetry",
                                              "heavy_tail", "drift_wander",      "clock_step",
                                              "frequency_step", "asymmetry_step", "stamp_noise"};
  return names;
}

/// A preset by name; `errc::not_found` for an unknown name. Each preset has a
/// distinct non-zero initial offset so that sign errors show.
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

// ---------------------------------------------------------------------------
// Text format

/// A parse error: the code, the 1-based line number (0 when not tied to a
/// line) and a message naming the key and the problem.
using parse_error = tsync::text_error;

namespace detail {

using io::format_duration;
/// The scenario files' durations: the one grammar of io/duration.hpp.
inline expected<std::int64_t, errc> parse_duration(std::string_view t) { return io::parse_duration(t); }

inline std::vector<std::string_view> split_commas(std::string_view v) {
  std::vector<std::string_view> out;
  while (true) {
    auto c = v.find(',');
    out.push_back(v.substr(0, c));
    if (c == std::string_view::npos) break;
    v = v.substr(c + 1);
  }
  return out;
}

}  // namespace detail

/// The text form of `sc` (every key, steps one per line).
[[nodiscard]] inline std::string to_text(const scenario& sc) {
  using detail::format_double;
  using detail::format_duration;
  std::string o;
  auto kv = [&](std::string_view k, const std::string& v) {
    o.append(k);
    o += '=';
    o += v;
    o += '\n';
  };
  kv("name", sc.name);
  kv("description", sc.description);
  kv("start", format_duration(sc.start_ns));
  kv("duration", format_duration(sc.duration_ns));
  kv("burst_interval", format_duration(sc.burst_interval_ns));
  kv("burst_jitter", format_duration(sc.burst_jitter_ns));
  kv("probes_per_burst", std::to_string(sc.probes_per_burst));
  kv("probe_gap", format_duration(sc.probe_gap_ns));
  kv("timeout", format_duration(sc.timeout_ns));
  kv("vcpus", std::to_string(sc.vcpus));
  const clock_model& c = sc.clock;
  kv("clock.offset", format_duration(c.offset_ns));
  kv("clock.drift_ppm", format_double(c.drift_ppm));
  kv("clock.freq_rw_ppb", format_double(c.freq_rw_ppb));
  kv("clock.wander_ppm", format_double(c.wander_ppm));
  kv("clock.wander_period", format_duration(c.wander_period_ns));
  kv("clock.wander_phase", format_double(c.wander_phase_rad));
  for (const auto& st : c.offset_steps) kv("clock.offset_step", format_duration(st.at_ns) + "," + format_duration(st.delta_ns));
  for (const auto& st : c.frequency_steps) kv("clock.freq_step", format_duration(st.at_ns) + "," + format_double(st.delta_ppm));
  kv("clock.knot", format_duration(c.knot_ns));
  kv("clock.host_quantum", format_duration(c.host_quantum_ns));
  kv("clock.guest_quantum", format_duration(c.guest_quantum_ns));
  kv("clock.host_noise", format_double(c.host_noise_ns));
  kv("clock.guest_noise", format_double(c.guest_noise_ns));
  kv("clock.glitch_prob", format_double(c.glitch_prob));
  kv("clock.glitch", format_duration(c.glitch_ns));
  const link_model& l = sc.link;
  kv("link.fwd.min", format_duration(l.fwd.min_ns));
  kv("link.fwd.queue", to_string(l.fwd.queue));
  kv("link.back.min", format_duration(l.back.min_ns));
  kv("link.back.queue", to_string(l.back.queue));
  kv("link.loss", format_double(l.loss_prob));
  kv("link.dup", format_double(l.dup_prob));
  kv("link.dup_delay", to_string(l.dup_delay));
  kv("link.reorder", format_double(l.reorder_prob));
  kv("link.reorder_delay", to_string(l.reorder_delay));
  kv("link.spike", format_double(l.spike_prob));
  kv("link.spike_delay", to_string(l.spike_delay));
  for (const auto& st : l.asymmetry_steps)
    kv("link.asym_step", format_duration(st.at_ns) + "," + (st.dir == direction::forward ? "fwd" : "back") + "," +
                             format_duration(st.delta_ns));
  return o;
}

/// Parse the text format (see the file comment). The result is validated.
/// Errors name the line and key: unknown key, missing `=`, malformed value,
/// `preset` not on the first setting line, or an invalid scenario (line 0).
[[nodiscard]] inline expected<scenario, parse_error> parse_scenario(std::string_view text) {
  scenario sc;
  bool cleared_offset = false, cleared_freq = false, cleared_asym = false;
  bool any_setting = false;
  std::size_t line_no = 0;
  while (!text.empty() || line_no == 0) {
    ++line_no;
    const auto nl = text.find('\n');
    const std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const std::string_view line = tsync::detail::trim_text(raw);
    if (line.empty() || line.front() == '#') {
      if (text.empty()) break;
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return unexpected(parse_error{errc::invalid_argument, line_no, "expected key=value, got '" + std::string(line.substr(0, 60)) + "'"});
    const std::string_view key = tsync::detail::trim_text(line.substr(0, eq));
    const std::string_view val = tsync::detail::trim_text(line.substr(eq + 1));
    auto err = [&](errc e, std::string_view what) {
      return unexpected(parse_error{e, line_no, std::string(key) + ": " + std::string(what) + " ('" +
                                                    std::string(val.substr(0, 60)) + "': " + to_string(e) + ")"});
    };
    auto dur = [&](std::int64_t& out) -> errc {
      auto v = detail::parse_duration(val);
      if (!v) return v.error();
      out = *v;
      return errc::ok;
    };
    auto dbl = [&](double& out) -> errc {
      auto v = detail::parse_double(val);
      if (!v) return v.error();
      out = *v;
      return errc::ok;
    };
    auto u32 = [&](std::uint32_t& out) -> errc { return io::parse_decimal(val, out); };
    auto dist = [&](distribution& out) -> errc {
      auto v = parse_distribution(val);
      if (!v) return v.error();
      out = *v;
      return errc::ok;
    };
    errc e = errc::ok;
    const char* what = "bad value";
    if (key == "preset") {
      if (any_setting) return err(errc::invalid_argument, "preset must come before every other key");
      auto p = preset(val);
      if (!p) return err(p.error(), "unknown preset");
      sc = *p;
    } else if (key == "name") {
      sc.name = std::string(val);
    } else if (key == "description") {
      sc.description = std::string(val);
    } else if (key == "start") { e = dur(sc.start_ns); what = "expected a duration";
    } else if (key == "duration") { e = dur(sc.duration_ns); what = "expected a duration";
    } else if (key == "burst_interval") { e = dur(sc.burst_interval_ns); what = "expected a duration";
    } else if (key == "burst_jitter") { e = dur(sc.burst_jitter_ns); what = "expected a duration";
    } else if (key == "probes_per_burst") { e = u32(sc.probes_per_burst); what = "expected a count";
    } else if (key == "probe_gap") { e = dur(sc.probe_gap_ns); what = "expected a duration";
    } else if (key == "timeout") { e = dur(sc.timeout_ns); what = "expected a duration";
    } else if (key == "vcpus") { e = u32(sc.vcpus); what = "expected a count";
    } else if (key == "clock.offset") { e = dur(sc.clock.offset_ns); what = "expected a duration";
    } else if (key == "clock.drift_ppm") { e = dbl(sc.clock.drift_ppm); what = "expected a number";
    } else if (key == "clock.freq_rw_ppb") { e = dbl(sc.clock.freq_rw_ppb); what = "expected a number";
    } else if (key == "clock.wander_ppm") { e = dbl(sc.clock.wander_ppm); what = "expected a number";
    } else if (key == "clock.wander_period") { e = dur(sc.clock.wander_period_ns); what = "expected a duration";
    } else if (key == "clock.wander_phase") { e = dbl(sc.clock.wander_phase_rad); what = "expected a number";
    } else if (key == "clock.knot") { e = dur(sc.clock.knot_ns); what = "expected a duration";
    } else if (key == "clock.host_quantum") { e = dur(sc.clock.host_quantum_ns); what = "expected a duration";
    } else if (key == "clock.guest_quantum") { e = dur(sc.clock.guest_quantum_ns); what = "expected a duration";
    } else if (key == "clock.host_noise") { e = dbl(sc.clock.host_noise_ns); what = "expected a number (ns)";
    } else if (key == "clock.guest_noise") { e = dbl(sc.clock.guest_noise_ns); what = "expected a number (ns)";
    } else if (key == "clock.glitch_prob") { e = dbl(sc.clock.glitch_prob); what = "expected a probability";
    } else if (key == "clock.glitch") { e = dur(sc.clock.glitch_ns); what = "expected a duration";
    } else if (key == "clock.offset_step" || key == "clock.freq_step" || key == "link.asym_step") {
      const auto parts = detail::split_commas(val);
      const std::size_t want = key == "link.asym_step" ? 3 : 2;
      if (parts.size() != want)
        return err(errc::invalid_argument, want == 3 ? "expected AT,fwd|back,DELTA" : "expected AT,DELTA");
      auto at = detail::parse_duration(tsync::detail::trim_text(parts[0]));
      if (!at) return err(at.error(), "bad step time");
      if (key == "clock.offset_step") {
        auto d = detail::parse_duration(tsync::detail::trim_text(parts[1]));
        if (!d) return err(d.error(), "bad step size");
        if (!cleared_offset) sc.clock.offset_steps.clear();
        cleared_offset = true;
        sc.clock.offset_steps.push_back({*at, *d});
      } else if (key == "clock.freq_step") {
        auto d = detail::parse_double(tsync::detail::trim_text(parts[1]));
        if (!d) return err(d.error(), "bad step size (ppm)");
        if (!cleared_freq) sc.clock.frequency_steps.clear();
        cleared_freq = true;
        sc.clock.frequency_steps.push_back({*at, *d});
      } else {
        const auto dir_text = tsync::detail::trim_text(parts[1]);
        direction dir{};
        if (dir_text == "fwd" || dir_text == "forward") dir = direction::forward;
        else if (dir_text == "back" || dir_text == "backward") dir = direction::backward;
        else return err(errc::invalid_argument, "direction must be fwd or back");
        auto d = detail::parse_duration(tsync::detail::trim_text(parts[2]));
        if (!d) return err(d.error(), "bad step size");
        if (!cleared_asym) sc.link.asymmetry_steps.clear();
        cleared_asym = true;
        sc.link.asymmetry_steps.push_back({*at, dir, *d});
      }
    } else if (key == "link.fwd.min") { e = dur(sc.link.fwd.min_ns); what = "expected a duration";
    } else if (key == "link.fwd.queue") { e = dist(sc.link.fwd.queue); what = "expected a distribution";
    } else if (key == "link.back.min") { e = dur(sc.link.back.min_ns); what = "expected a duration";
    } else if (key == "link.back.queue") { e = dist(sc.link.back.queue); what = "expected a distribution";
    } else if (key == "link.loss") { e = dbl(sc.link.loss_prob); what = "expected a probability";
    } else if (key == "link.dup") { e = dbl(sc.link.dup_prob); what = "expected a probability";
    } else if (key == "link.dup_delay") { e = dist(sc.link.dup_delay); what = "expected a distribution";
    } else if (key == "link.reorder") { e = dbl(sc.link.reorder_prob); what = "expected a probability";
    } else if (key == "link.reorder_delay") { e = dist(sc.link.reorder_delay); what = "expected a distribution";
    } else if (key == "link.spike") { e = dbl(sc.link.spike_prob); what = "expected a probability";
    } else if (key == "link.spike_delay") { e = dist(sc.link.spike_delay); what = "expected a distribution";
    } else {
      return unexpected(parse_error{errc::not_found, line_no, "unknown key '" + std::string(key.substr(0, 60)) + "'"});
    }
    if (e != errc::ok) return err(e, what);
    any_setting = true;
    if (text.empty()) break;
  }
  if (auto e = sc.validate(); e != errc::ok)
    return unexpected(parse_error{e, 0, std::string("invalid scenario: ") + to_string(e)});
  return sc;
}

}  // namespace tsync::sim
