#pragma once
/// \file
/// The text form of a simulation scenario (sim/scenario.hpp): `to_text` and
/// `parse_scenario`.
///
/// One `key=value` per line; blank lines and lines starting with `#` are
/// ignored; spaces around key and value are ignored; a UTF-8 byte-order mark
/// at the start is skipped. Durations use the one grammar of io/duration.hpp
/// (`ns`, `us`, `ms`, `s`, `m` or `min`, `h`; none = ns; exact decimal
/// fractions such as `2.5ms`), counts and rates the decimal parser of
/// io/text.hpp, distributions the text form of sim/random.hpp (`exp:2000`,
/// values in ns). Repeatable keys (`clock.offset_step`, `clock.freq_step`,
/// `link.asym_step`) add one step per line. Keys not given keep the defaults of
/// `scenario{}` -- or of the preset named by a leading `preset=NAME` line. The
/// input is bounded by `text_limits` (1 MiB and 64 KiB lines unless
/// overridden). See sim/scenario.hpp for the keys.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/io/duration.hpp"
#include "tsync/io/text.hpp"
#include "tsync/sim/scenario.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// The text form of `sc` (every key, steps one per line).
[[nodiscard]] inline std::string to_text(const sim::scenario& sc) {
  using sim::detail::format_double;
  using namespace sim;
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


/// The default caps of scenario text (scenario files are small).
inline constexpr text_limits scenario_text_limits{std::size_t{1} << 20, std::size_t{1} << 16};

namespace detail {

/// A scalar field of a scenario, by key; `monostate` for no such scalar key.
using scenario_field =
    std::variant<std::monostate, std::string*, std::int64_t*, std::uint32_t*, double*, sim::distribution*>;

inline scenario_field scenario_key(sim::scenario& sc, std::string_view key) {
  auto& c = sc.clock;
  auto& l = sc.link;
  if (key == "name") return &sc.name;
  if (key == "description") return &sc.description;
  if (key == "start") return &sc.start_ns;
  if (key == "duration") return &sc.duration_ns;
  if (key == "burst_interval") return &sc.burst_interval_ns;
  if (key == "burst_jitter") return &sc.burst_jitter_ns;
  if (key == "probes_per_burst") return &sc.probes_per_burst;
  if (key == "probe_gap") return &sc.probe_gap_ns;
  if (key == "timeout") return &sc.timeout_ns;
  if (key == "vcpus") return &sc.vcpus;
  if (key == "clock.offset") return &c.offset_ns;
  if (key == "clock.drift_ppm") return &c.drift_ppm;
  if (key == "clock.freq_rw_ppb") return &c.freq_rw_ppb;
  if (key == "clock.wander_ppm") return &c.wander_ppm;
  if (key == "clock.wander_period") return &c.wander_period_ns;
  if (key == "clock.wander_phase") return &c.wander_phase_rad;
  if (key == "clock.knot") return &c.knot_ns;
  if (key == "clock.host_quantum") return &c.host_quantum_ns;
  if (key == "clock.guest_quantum") return &c.guest_quantum_ns;
  if (key == "clock.host_noise") return &c.host_noise_ns;
  if (key == "clock.guest_noise") return &c.guest_noise_ns;
  if (key == "clock.glitch_prob") return &c.glitch_prob;
  if (key == "clock.glitch") return &c.glitch_ns;
  if (key == "link.fwd.min") return &l.fwd.min_ns;
  if (key == "link.fwd.queue") return &l.fwd.queue;
  if (key == "link.back.min") return &l.back.min_ns;
  if (key == "link.back.queue") return &l.back.queue;
  if (key == "link.loss") return &l.loss_prob;
  if (key == "link.dup") return &l.dup_prob;
  if (key == "link.dup_delay") return &l.dup_delay;
  if (key == "link.reorder") return &l.reorder_prob;
  if (key == "link.reorder_delay") return &l.reorder_delay;
  if (key == "link.spike") return &l.spike_prob;
  if (key == "link.spike_delay") return &l.spike_delay;
  return std::monostate{};
}

// Parse `v` into a field of each kind; `what` names the expected kind.
inline errc parse_field(std::string_view v, std::string* out, const char*& what) {
  what = "expected text";
  *out = std::string(v);
  return errc::ok;
}
inline errc parse_field(std::string_view v, std::int64_t* out, const char*& what) {
  what = "expected a duration";
  auto d = parse_duration(v);
  if (!d) return d.error();
  *out = *d;
  return errc::ok;
}
inline errc parse_field(std::string_view v, std::uint32_t* out, const char*& what) {
  what = "expected a count";
  return parse_decimal(v, *out);
}
inline errc parse_field(std::string_view v, double* out, const char*& what) {
  what = "expected a number";
  return parse_decimal(v, *out);
}
inline errc parse_field(std::string_view v, sim::distribution* out, const char*& what) {
  what = "expected a distribution";
  auto d = sim::parse_distribution(v);
  if (!d) return d.error();
  *out = *d;
  return errc::ok;
}

inline std::vector<std::string_view> split_commas(std::string_view v) {
  std::vector<std::string_view> out;
  while (true) {
    auto c = v.find(',');
    out.push_back(tsync::detail::trim_text(v.substr(0, c)));
    if (c == std::string_view::npos) break;
    v = v.substr(c + 1);
  }
  return out;
}

/// The repeatable step keys: the first occurrence of each replaces the
/// preset's (or default) steps, later ones add.
struct step_keys {
  bool cleared_offset = false, cleared_freq = false, cleared_asym = false;

  /// Parse a step line of `key` into `sc`; `what` says what was expected.
  errc add(sim::scenario& sc, std::string_view key, std::string_view val, const char*& what) {
    const auto parts = split_commas(val);
    const bool asym = key == "link.asym_step";
    what = asym ? "expected AT,fwd|back,DELTA" : "expected AT,DELTA";
    if (parts.size() != (asym ? 3u : 2u)) return errc::invalid_argument;
    auto at = parse_duration(parts[0]);
    what = "bad step time";
    if (!at) return at.error();
    what = "bad step size";
    if (key == "clock.offset_step") {
      auto d = parse_duration(parts[1]);
      if (!d) return d.error();
      if (!std::exchange(cleared_offset, true)) sc.clock.offset_steps.clear();
      sc.clock.offset_steps.push_back({*at, *d});
    } else if (key == "clock.freq_step") {
      what = "bad step size (ppm)";
      auto d = parse_decimal<double>(parts[1]);
      if (!d) return d.error();
      if (!std::exchange(cleared_freq, true)) sc.clock.frequency_steps.clear();
      sc.clock.frequency_steps.push_back({*at, *d});
    } else {
      sim::direction dir{};
      what = "direction must be fwd or back";
      if (parts[1] == "fwd" || parts[1] == "forward") dir = sim::direction::forward;
      else if (parts[1] == "back" || parts[1] == "backward") dir = sim::direction::backward;
      else return errc::invalid_argument;
      what = "bad step size";
      auto d = parse_duration(parts[2]);
      if (!d) return d.error();
      if (!std::exchange(cleared_asym, true)) sc.link.asymmetry_steps.clear();
      sc.link.asymmetry_steps.push_back({*at, dir, *d});
    }
    return errc::ok;
  }
};

/// One `key=value` line of a scenario, applied to `sc`.
class scenario_line_parser {
 public:
  std::optional<text_error> apply(sim::scenario& sc, std::string_view line, std::size_t line_no) {
    const auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return text_error{errc::invalid_argument, line_no, "", "expected key=value, got '" + quote_input(line, 60) + "'"};
    const std::string_view key = tsync::detail::trim_text(line.substr(0, eq));
    const std::string_view val = tsync::detail::trim_text(line.substr(eq + 1));
    const char* what = "bad value";
    errc e = errc::ok;
    if (key == "preset") {
      if (any_setting_) {
        what = "preset must come before every other key";
        e = errc::invalid_argument;
      } else if (auto p = sim::preset(val)) {
        sc = *p;
      } else {
        what = "unknown preset";
        e = p.error();
      }
    } else if (key == "clock.offset_step" || key == "clock.freq_step" || key == "link.asym_step") {
      e = steps_.add(sc, key, val, what);
    } else {
      auto field = scenario_key(sc, key);
      if (std::holds_alternative<std::monostate>(field))
        return text_error{errc::not_found, line_no, std::string(key), "unknown key '" + quote_input(key, 60) + "'"};
      e = std::visit([&](auto f) -> errc {
        if constexpr (std::is_same_v<decltype(f), std::monostate>) return errc::not_found;
        else return parse_field(val, f, what);
      }, field);
    }
    if (e != errc::ok)
      return text_error{e, line_no, std::string(key),
                        std::string(key) + ": " + what + " ('" + quote_input(val, 60) + "': " + to_string(e) + ")"};
    any_setting_ = true;
    return std::nullopt;
  }

 private:
  step_keys steps_{};
  bool any_setting_ = false;
};

}  // namespace detail

/// Parse the text form (see the file comment). The result is validated.
/// Errors (`text_error`, `field` = the key) name the line and key: unknown
/// key, missing `=`, malformed value, `preset` not on the first setting line,
/// an input above `limits` (`errc::oversized`), or an invalid scenario (line 0).
[[nodiscard]] inline expected<sim::scenario, text_error> parse_scenario(std::string_view text,
                                                                       text_limits limits = scenario_text_limits) {
  if (text.size() > limits.max_bytes)
    return unexpected(text_error{errc::oversized, 0, "",
                                 "scenario text larger than " + std::to_string(limits.max_bytes) + " bytes"});
  if (text.substr(0, utf8_bom.size()) == utf8_bom) text.remove_prefix(utf8_bom.size());
  sim::scenario sc;
  detail::scenario_line_parser parser;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    const std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (raw.size() > limits.max_line)
      return unexpected(text_error{errc::oversized, line_no, "",
                                   "line longer than " + std::to_string(limits.max_line) + " bytes"});
    const std::string_view line = tsync::detail::trim_text(raw);
    if (line.empty() || line.front() == '#') continue;
    if (auto err = parser.apply(sc, line, line_no)) return unexpected(std::move(*err));
  }
  if (auto v = sim::validate(sc); !v)
    return unexpected(text_error{v.error(), 0, "", std::string("invalid scenario: ") + to_string(v.error())});
  return sc;
}

}  // namespace tsync::io

namespace tsync::inline TSYNC_ABI::sim {
using io::parse_scenario;
using io::to_text;
}  // namespace tsync::sim
