#pragma once
/// \file
/// The registry of ftrace `trace_clock` names, their properties, the userspace
/// clock that reads the same time (where one exists), whether a (host, guest)
/// pairing of clocks can be synchronized and how, and a reader of the clock a
/// tracefs instance currently uses.
///
/// Names are matched exactly (a prefix match would classify "mono_raw" as
/// "mono"). Properties:
///
/// | name | scope | rate | unit | monotonic | userspace source |
/// |---|---|---|---|---|---|
/// | local | per-CPU | raw (sched_clock) | ns | per CPU only | none exact (≈ sched_clock) |
/// | global | global | raw (sched_clock) | ns | yes | none exact (≈ sched_clock) |
/// | counter | global | not time | events | yes | none |
/// | uptime | global | not time (jiffies) | USER_HZ ticks | yes | none |
/// | perf | per-CPU | raw (sched_clock) | ns | per CPU only | none exact (≈ sched_clock) |
/// | mono | global | NTP-slewed | ns | yes | CLOCK_MONOTONIC |
/// | mono_raw | global | raw | ns | yes | CLOCK_MONOTONIC_RAW |
/// | boot | global | NTP-slewed | ns | yes | CLOCK_BOOTTIME |
/// | tai | global | NTP-slewed, can be stepped | ns | no | CLOCK_TAI |
/// | x86-tsc | global (invariant TSC) | raw | cycles | yes | rdtsc |

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsync/clock/posix_clock.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// The ftrace trace clocks tsync knows.
enum class trace_clock_id : std::uint8_t { local, global, counter, uptime, perf, mono, mono_raw, boot, tai, x86_tsc };

/// Whether readings of the clock on different CPUs are comparable.
enum class clock_scope : std::uint8_t { per_cpu, global };
/// How the clock's rate is disciplined.
enum class clock_rate : std::uint8_t {
  raw,        ///< hardware rate, never adjusted
  ntp_slewed, ///< frequency adjusted by NTP/adjtimex
  not_time,   ///< not a time at all (an event counter, or jiffies)
};
/// The unit of a reading.
enum class clock_unit : std::uint8_t { nanoseconds, cycles, events, jiffies };
/// The userspace source that reads the same clock.
enum class userspace_source : std::uint8_t {
  none,                ///< nothing in userspace reads this clock
  sched_clock_approx,  ///< sched_clock-based: no exact userspace source
  clock_monotonic,
  clock_monotonic_raw,
  clock_boottime,
  clock_tai,
  tsc,
};

/// Properties of one trace clock.
struct trace_clock_info {
  trace_clock_id id;
  std::string_view name;   ///< exactly as in `<tracefs>/trace_clock`
  clock_scope scope;
  clock_rate rate;
  clock_unit unit;
  bool monotonic;          ///< never goes backwards, across CPUs for global clocks
  userspace_source source;
  std::string_view note;
};

/// The registry, in the kernel's listing order.
inline constexpr std::array<trace_clock_info, 10> trace_clocks{{
    {trace_clock_id::local, "local", clock_scope::per_cpu, clock_rate::raw, clock_unit::nanoseconds, false,
     userspace_source::sched_clock_approx, "sched_clock per CPU; not coherent across CPUs or idle"},
    {trace_clock_id::global, "global", clock_scope::global, clock_rate::raw, clock_unit::nanoseconds, true,
     userspace_source::sched_clock_approx, "sched_clock serialized across CPUs"},
    {trace_clock_id::counter, "counter", clock_scope::global, clock_rate::not_time, clock_unit::events, true,
     userspace_source::none, "an atomic event counter, orders events but measures no time"},
    {trace_clock_id::uptime, "uptime", clock_scope::global, clock_rate::not_time, clock_unit::jiffies, true,
     userspace_source::none, "jiffies since boot, too coarse to synchronize"},
    {trace_clock_id::perf, "perf", clock_scope::per_cpu, clock_rate::raw, clock_unit::nanoseconds, false,
     userspace_source::sched_clock_approx, "local_clock, as perf uses"},
    {trace_clock_id::mono, "mono", clock_scope::global, clock_rate::ntp_slewed, clock_unit::nanoseconds, true,
     userspace_source::clock_monotonic, "CLOCK_MONOTONIC"},
    {trace_clock_id::mono_raw, "mono_raw", clock_scope::global, clock_rate::raw, clock_unit::nanoseconds, true,
     userspace_source::clock_monotonic_raw, "CLOCK_MONOTONIC_RAW"},
    {trace_clock_id::boot, "boot", clock_scope::global, clock_rate::ntp_slewed, clock_unit::nanoseconds, true,
     userspace_source::clock_boottime, "CLOCK_BOOTTIME (counts suspend)"},
    {trace_clock_id::tai, "tai", clock_scope::global, clock_rate::ntp_slewed, clock_unit::nanoseconds, false,
     userspace_source::clock_tai, "CLOCK_TAI; follows settimeofday steps"},
    {trace_clock_id::x86_tsc, "x86-tsc", clock_scope::global, clock_rate::raw, clock_unit::cycles, true,
     userspace_source::tsc, "raw TSC cycles; the only clock KVM offsets apply to"},
}};

/// Properties of a clock.
[[nodiscard]] constexpr const trace_clock_info& info(trace_clock_id id) noexcept {
  return trace_clocks[static_cast<std::size_t>(id)];
}
[[nodiscard]] constexpr std::string_view to_string(trace_clock_id id) noexcept { return info(id).name; }

/// Parse a trace_clock name by exact match. `errc::not_found` for anything else
/// (including prefixes, case variants and surrounding spaces).
[[nodiscard]] constexpr expected<trace_clock_id, errc> parse_trace_clock(std::string_view s) noexcept {
  for (const auto& c : trace_clocks) {
    if (c.name == s) return c.id;
  }
  return unexpected(errc::not_found);
}

/// The POSIX clock that reads the same time as `id`, if there is one.
[[nodiscard]] constexpr std::optional<posix_clock_id> posix_source(trace_clock_id id) noexcept {
  switch (info(id).source) {
    case userspace_source::clock_monotonic: return posix_clock_id::monotonic;
    case userspace_source::clock_monotonic_raw: return posix_clock_id::monotonic_raw;
    case userspace_source::clock_boottime: return posix_clock_id::boottime;
    case userspace_source::clock_tai: return posix_clock_id::tai;
    default: return std::nullopt;
  }
}

/// Whether userspace can stamp probes in exactly this clock.
[[nodiscard]] constexpr bool has_userspace_source(trace_clock_id id) noexcept {
  const auto s = info(id).source;
  return s != userspace_source::none && s != userspace_source::sched_clock_approx;
}

/// The verdict on one way of synchronizing a clock pairing.
struct pairing_verdict {
  bool possible = false;
  std::string reason;
};

/// Whether a (host clock, guest clock) pairing can be synchronized, per protocol.
struct pairing_report {
  pairing_verdict probe; ///< probe-based (PTP-like) exchange
  pairing_verdict kvm;   ///< exact KVM TSC offsets from debugfs (still needs a readable debugfs)
  /// True if at least one protocol can work.
  [[nodiscard]] bool any() const noexcept { return probe.possible || kvm.possible; }
};

/// Decide up front which protocols can synchronize `host` and `guest` clocks.
///
/// Probe-based sync needs, on both sides, an exact userspace source for the
/// clock (so the probe stamps are in the traced clock) in a common unit, and a
/// clock that measures time; per-CPU clocks have no userspace source and are
/// refused. KVM sync needs x86-tsc on both sides.
[[nodiscard]] inline pairing_report check_pairing(trace_clock_id host, trace_clock_id guest) {
  pairing_report r;
  const auto& h = info(host);
  const auto& g = info(guest);
  auto side_problem = [](const trace_clock_info& c, const char* side) -> std::string {
    if (c.rate == clock_rate::not_time)
      return std::string(side) + " clock '" + std::string(c.name) + "' measures no time";
    if (c.source == userspace_source::sched_clock_approx)
      return std::string(side) + " clock '" + std::string(c.name) +
             "' is sched_clock-based: no userspace source stamps it exactly";
    if (c.source == userspace_source::none)
      return std::string(side) + " clock '" + std::string(c.name) + "' has no userspace source";
    return {};
  };
  if (auto p = side_problem(h, "host"); !p.empty()) {
    r.probe.reason = p;
  } else if (auto q = side_problem(g, "guest"); !q.empty()) {
    r.probe.reason = q;
  } else if (h.unit != g.unit) {
    r.probe.reason = "units differ: host '" + std::string(h.name) + "' and guest '" + std::string(g.name) +
                     "' need a conversion (e.g. tsc2nsec) first";
  } else {
    r.probe.possible = true;
    r.probe.reason = "both sides read '" + std::string(h.name) + "'/'" + std::string(g.name) +
                     "' from userspace in the same unit";
    if (host != guest) r.probe.reason += " (different clocks: the offset includes their epoch difference)";
  }
  if (host == trace_clock_id::x86_tsc && guest == trace_clock_id::x86_tsc) {
    r.kvm.possible = true;
    r.kvm.reason = "x86-tsc on both sides: KVM's tsc-offset (and scaling) give the exact mapping";
  } else {
    r.kvm.reason = "KVM offsets relate TSCs only: both clocks must be x86-tsc (host '" + std::string(h.name) +
                   "', guest '" + std::string(g.name) + "')";
  }
  return r;
}

/// The contents of a tracefs `trace_clock` file.
struct trace_clock_setting {
  std::string current;                 ///< the bracketed name
  std::vector<std::string> available;  ///< every listed name, in order
  /// The registry entry of `current`, if tsync knows it (e.g. not for "ppc-tb").
  [[nodiscard]] std::optional<trace_clock_id> id() const noexcept {
    auto r = parse_trace_clock(current);
    return r ? std::optional<trace_clock_id>(*r) : std::nullopt;
  }
};

/// Parse `local global [mono_raw] ...`: names separated by blanks, exactly one
/// in brackets. Errors: `errc::empty_input`, `errc::protocol_error` if no or
/// several bracketed names or a malformed bracket.
[[nodiscard]] inline expected<trace_clock_setting, errc> parse_trace_clock_file(std::string_view text) {
  trace_clock_setting s;
  std::size_t i = 0;
  int bracketed = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
    if (i >= text.size()) break;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t' && text[j] != '\n' && text[j] != '\r') ++j;
    std::string_view tok = text.substr(i, j - i);
    i = j;
    const bool open = tok.front() == '[';
    const bool close = tok.back() == ']';
    if (open != close || (open && tok.size() < 3)) return unexpected(errc::protocol_error);
    if (open) {
      tok = tok.substr(1, tok.size() - 2);
      if (tok.find_first_of("[]") != std::string_view::npos) return unexpected(errc::protocol_error);
      ++bracketed;
      s.current = std::string(tok);
    } else if (tok.find_first_of("[]") != std::string_view::npos) {
      return unexpected(errc::protocol_error);
    }
    s.available.emplace_back(tok);
  }
  if (s.available.empty()) return unexpected(errc::empty_input);
  if (bracketed != 1) return unexpected(errc::protocol_error);
  return s;
}

/// Read `<tracefs_root>/trace_clock` (for an instance, pass
/// `<tracefs>/instances/<name>`). Errors: `errc::not_found`,
/// `errc::permission_denied`, `errc::io_error`, or the parse errors above.
[[nodiscard]] inline expected<trace_clock_setting, std::error_code> read_trace_clock(
    const std::filesystem::path& tracefs_root) {
  const auto p = tracefs_root / "trace_clock";
  std::error_code ec;
  const bool exists = std::filesystem::exists(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    if (ec == std::errc::permission_denied) return unexpected(make_error_code(errc::permission_denied));
    return unexpected(make_error_code(errc::io_error));
  }
  if (!exists) return unexpected(make_error_code(errc::not_found));
  std::ifstream in(p);
  if (!in) return unexpected(make_error_code(errc::permission_denied));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return unexpected(make_error_code(errc::io_error));
  auto r = parse_trace_clock_file(ss.str());
  if (!r) return unexpected(make_error_code(r.error()));
  return std::move(*r);
}

}  // namespace tsync::clock
