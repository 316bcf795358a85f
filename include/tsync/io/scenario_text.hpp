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

#include <cmath>
#include <cstdint>
#include <limits>
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
template <class = void>
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

template <class = void>
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
template <class = void>
inline errc parse_field(std::string_view v, std::string* out, const char*& what) {
  what = "expected text";
  *out = std::string(v);
  return errc::ok;
}
template <class = void>
inline errc parse_field(std::string_view v, std::int64_t* out, const char*& what) {
  what = "expected a duration";
  auto d = parse_duration(v);
  if (!d) return d.error();
  *out = *d;
  return errc::ok;
}
template <class = void>
inline errc parse_field(std::string_view v, std::uint32_t* out, const char*& what) {
  what = "expected a count";
  return parse_decimal(v, *out);
}
template <class = void>
inline errc parse_field(std::string_view v, double* out, const char*& what) {
  what = "expected a number";
  return parse_decimal(v, *out);
}
template <class = void>
inline errc parse_field(std::string_view v, sim::distribution* out, const char*& what) {
  what = "expected a distribution";
  auto d = sim::parse_distribution(v);
  if (!d) return d.error();
  *out = *d;
  return errc::ok;
}

template <class = void>
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
  template <class = void>
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

/// Why a scenario fails validation, by key of the text form: `keys` are the
/// keys that together break the rule (the parser names the one set last),
/// `step` the index of the step of the repeatable key among them.
struct scenario_problem {
  errc code = errc::ok;
  std::vector<std::string_view> keys{};
  std::size_t step = 0;
  std::string reason{};
};

/// The keys that may repeat (one step per line).
[[nodiscard]] inline bool repeatable(std::string_view key) noexcept {
  return key == "clock.offset_step" || key == "clock.freq_step" || key == "link.asym_step";
}

inline scenario_problem problem(errc c, std::string_view key, std::string reason, std::size_t step = 0) {
  return scenario_problem{c, {key}, step, std::move(reason)};
}

/// The first rule of `sim::clock_model`'s validation that `c` breaks, by key
/// (`code` ok when none); `duration` for the knot count.
inline scenario_problem clock_problem(const sim::clock_model& c, std::int64_t duration) {
  const std::pair<std::string_view, double> reals[] = {
      {"clock.drift_ppm", c.drift_ppm},   {"clock.freq_rw_ppb", c.freq_rw_ppb}, {"clock.wander_ppm", c.wander_ppm},
      {"clock.wander_phase", c.wander_phase_rad}, {"clock.host_noise", c.host_noise_ns},
      {"clock.guest_noise", c.guest_noise_ns},    {"clock.glitch_prob", c.glitch_prob}};
  for (const auto& [key, v] : reals)
    if (!std::isfinite(v)) return problem(errc::non_finite, key, "not a finite number");
  for (std::size_t i = 0; i < c.frequency_steps.size(); ++i)
    if (!std::isfinite(c.frequency_steps[i].delta_ppm)) return problem(errc::non_finite, "clock.freq_step", "not a finite number", i);
  const std::pair<std::string_view, std::int64_t> positive[] = {{"clock.knot", c.knot_ns},
      {"clock.host_quantum", c.host_quantum_ns}, {"clock.guest_quantum", c.guest_quantum_ns},
      {"clock.wander_period", c.wander_period_ns}};
  for (const auto& [key, v] : positive)
    if (v <= 0) return problem(errc::invalid_argument, key, "must be positive");
  for (const auto& [key, v] : {reals[1], reals[4], reals[5]})
    if (v < 0) return problem(errc::invalid_argument, key, "must not be negative");
  if (c.glitch_prob < 0 || c.glitch_prob > 1) return problem(errc::invalid_argument, "clock.glitch_prob", "must be in [0, 1]");
  for (std::size_t i = 0; i < c.frequency_steps.size(); ++i)
    if (c.frequency_steps[i].at_ns < 0) return problem(errc::invalid_argument, "clock.freq_step", "step time is negative", i);
  i128 step_sum = 0;
  for (std::size_t i = 0; i < c.offset_steps.size(); ++i) {
    const auto& st = c.offset_steps[i];
    if (st.at_ns < 0) return problem(errc::invalid_argument, "clock.offset_step", "step time is negative", i);
    step_sum += st.delta_ns < 0 ? -static_cast<i128>(st.delta_ns) : static_cast<i128>(st.delta_ns);
    if (step_sum > sim::clock_model::max_offset_step_sum_ns)
      return problem(errc::out_of_range, "clock.offset_step", "the steps' sizes add up to more than 2^62 ns", i);
  }
  double total_ppm = std::abs(c.drift_ppm) + std::abs(c.wander_ppm);
  for (const auto& st : c.frequency_steps) total_ppm += std::abs(st.delta_ppm);
  if (total_ppm >= 1e5)
    return scenario_problem{errc::invalid_argument, {"clock.drift_ppm", "clock.wander_ppm", "clock.freq_step"},
                            c.frequency_steps.empty() ? 0 : c.frequency_steps.size() - 1,
                            "drift, wander and frequency steps add up to 100000 ppm or more"};
  if (duration / c.knot_ns >= static_cast<std::int64_t>(sim::truth_map::max_knots))
    return scenario_problem{errc::oversized, {"clock.knot", "duration"}, 0,
                            "duration / knot is " + std::to_string(duration / c.knot_ns) + " knots, more than " +
                                std::to_string(sim::truth_map::max_knots - 1)};
  return {};
}

/// The first rule of `sim::link_model`'s validation that `l` breaks, by key.
inline scenario_problem link_problem(const sim::link_model& l) {
  const std::pair<std::string_view, double> probs[] = {
      {"link.loss", l.loss_prob}, {"link.dup", l.dup_prob}, {"link.reorder", l.reorder_prob}, {"link.spike", l.spike_prob}};
  for (const auto& [key, p] : probs) {
    if (!std::isfinite(p)) return problem(errc::non_finite, key, "not a finite number");
    if (p < 0 || p > 1) return problem(errc::invalid_argument, key, "must be in [0, 1]");
  }
  const std::pair<std::string_view, const sim::distribution*> dists[] = {
      {"link.fwd.queue", &l.fwd.queue}, {"link.back.queue", &l.back.queue}, {"link.dup_delay", &l.dup_delay},
      {"link.reorder_delay", &l.reorder_delay}, {"link.spike_delay", &l.spike_delay}};
  for (const auto& [key, d] : dists) {
    if (auto v = sim::validate(*d); !v) return problem(v.error(), key, "parameters outside the distribution's domain");
    if (d->min_value() < 0) return problem(errc::invalid_argument, key, "a delay that can be negative");
  }
  if (l.fwd.min_ns < 0) return problem(errc::invalid_argument, "link.fwd.min", "must not be negative");
  if (l.back.min_ns < 0) return problem(errc::invalid_argument, "link.back.min", "must not be negative");
  i128 mf = l.fwd.min_ns, mb = l.back.min_ns;
  for (std::size_t i = 0; i < l.asymmetry_steps.size(); ++i) {
    const auto& st = l.asymmetry_steps[i];
    if (st.at_ns < 0) return problem(errc::invalid_argument, "link.asym_step", "step time is negative", i);
    (st.dir == sim::direction::forward ? mf : mb) += st.delta_ns;
    if (mf < 0 || mb < 0)
      return problem(errc::invalid_argument, "link.asym_step", "makes the minimum delay negative", i);
    if (mf > std::numeric_limits<std::int64_t>::max() || mb > std::numeric_limits<std::int64_t>::max())
      return problem(errc::out_of_range, "link.asym_step", "makes the minimum delay leave int64", i);
  }
  return {};
}

/// The first rule of `sim::scenario`'s validation that `sc` breaks, by key.
inline scenario_problem scenario_problem_of(const sim::scenario& sc) {
  const std::pair<std::string_view, std::int64_t> positive[] = {
      {"duration", sc.duration_ns}, {"burst_interval", sc.burst_interval_ns}, {"probes_per_burst", sc.probes_per_burst},
      {"vcpus", sc.vcpus}, {"timeout", sc.timeout_ns}};
  for (const auto& [key, v] : positive)
    if (v <= 0) return problem(errc::invalid_argument, key, "must be positive");
  if (sc.burst_jitter_ns < 0) return problem(errc::invalid_argument, "burst_jitter", "must not be negative");
  if (sc.probe_gap_ns < 0) return problem(errc::invalid_argument, "probe_gap", "must not be negative");
  if (sc.probes_per_burst > 1'000'000) return problem(errc::oversized, "probes_per_burst", "more than 1000000");
  const u128 bursts = static_cast<u128>(sc.duration_ns / sc.burst_interval_ns) + 1;
  if (bursts * sc.probes_per_burst > 10'000'000)
    return scenario_problem{errc::oversized, {"probes_per_burst", "duration", "burst_interval"}, 0,
                            "duration / burst_interval + 1 bursts of probes_per_burst probes are more than 10000000"};
  if (sc.start_ns < 0 || sc.start_ns > (std::int64_t{1} << 62))
    return problem(errc::out_of_range, "start", "outside [0, 2^62 ns]");
  if (sc.duration_ns > (std::int64_t{1} << 60)) return problem(errc::out_of_range, "duration", "longer than 2^60 ns");
  if (auto p = clock_problem(sc.clock, sc.duration_ns); p.code != errc::ok) return p;
  return link_problem(sc.link);
}

/// One `key=value` line of a scenario, applied to `sc`.
template <class = void>
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
    set_.push_back({std::string(key), line_no});
    return std::nullopt;
  }

  /// The line that set `key` (for a repeatable key its `step`-th step line),
  /// 0 when the value is the default or the preset's.
  [[nodiscard]] std::size_t line_of(std::string_view key, std::size_t step) const {
    std::size_t line = 0, k = 0;
    for (const auto& [name, at] : set_) {
      if (name != key) continue;
      if (!repeatable(key)) line = at;
      else if (k++ == step) return at;
    }
    return line;
  }

  /// The validation error of `sc` as a text error naming the key (of the
  /// rule's keys, the one set last) and its line.
  [[nodiscard]] text_error invalid(const sim::scenario& sc, errc fallback) const {
    const scenario_problem p = scenario_problem_of(sc);
    if (p.code == errc::ok || p.keys.empty())  // not expected: every rule of validate() is named above
      return text_error{fallback, 0, "", std::string("invalid scenario: ") + to_string(fallback)};
    std::string_view key = p.keys.front();
    std::size_t line = line_of(key, p.step);
    for (std::string_view k : p.keys) {
      if (const std::size_t l = line_of(k, p.step); l > line) {
        key = k;
        line = l;
      }
    }
    std::string msg = std::string(key) + ": " + p.reason + " (" + to_string(p.code) + ")";
    if (line == 0) msg += line_of("preset", 0) ? ", the preset's value" : ", the default value";
    return text_error{p.code, line, std::string(key), std::move(msg)};
  }

 private:
  struct set_key {
    std::string key;
    std::size_t line;
  };
  step_keys steps_{};
  bool any_setting_ = false;
  std::vector<set_key> set_{};
};

}  // namespace detail

/// Parse the text form (see the file comment). The result is validated.
/// Errors (`text_error`, `field` = the key) name the line and key: unknown
/// key, missing `=`, malformed value, `preset` not on the first setting line,
/// an input above `limits` (`errc::oversized`), or an invalid scenario: the
/// key of the broken rule and the line that set it (`clock.knot=1ns` on line 3:
/// line 3, field `clock.knot`, "clock.knot: duration / knot is ... knots, more
/// than 9999999 (oversized)"); of a rule on several keys (`duration`,
/// `burst_interval`, `probes_per_burst`) the one set last; line 0 when the
/// value is a default or the preset's.
template <class = void>
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
  if (auto v = sim::validate(sc); !v) return unexpected(parser.invalid(sc, v.error()));
  return sc;
}

}  // namespace tsync::io

namespace tsync::inline TSYNC_ABI::sim {
using io::parse_scenario;
using io::to_text;
}  // namespace tsync::sim
