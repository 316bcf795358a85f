#pragma once
/// \file
/// Simulated guest clock and its exact ground truth.
///
/// The host clock is the reference: a host instant *is* a host time in ns.
/// The guest clock is described by `clock_model` (offset, drift, frequency
/// random walk, sinusoidal wander, steps in offset and in frequency) and
/// realised, for one seed, as a `truth_map`: a piecewise-linear map from host
/// ns to guest ns with integer knots every `knot` ns (100 ms by default). The
/// truth map *is* the guest clock; nothing approximates it. Between two knots
/// the guest reading is interpolated exactly with 128-bit integers and rounded
/// down (see `truth_map::guest_at`).
///
/// Stamp imperfections (quantisation, Gaussian noise, rare glitches) are also
/// part of `clock_model` but do not change the clock: they make the *recorded*
/// stamps deviate from it (see `stamp_model`).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <optional>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/sim/random.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::sim {

/// A step of the guest clock's reading at a host time.
struct offset_step {
  std::int64_t at_ns = 0;     ///< host time of the step, relative to the trace start
  std::int64_t delta_ns = 0;  ///< the guest reading jumps by +delta (the offset host − guest changes by −delta)
  friend constexpr bool operator==(const offset_step&, const offset_step&) = default;
};

/// A step of the guest clock's frequency at a host time.
struct frequency_step {
  std::int64_t at_ns = 0;  ///< host time of the step, relative to the trace start
  double delta_ppm = 0;    ///< the guest rate changes by delta_ppm·1e-6
  friend constexpr bool operator==(const frequency_step&, const frequency_step&) = default;
};

/// The guest clock relative to the host clock, and how each side's stamps are
/// taken. Times in ns; rates in ppm (1e-6) or ppb (1e-9).
///
/// At host time `h` (with `t = h − start` the time since the trace start) the
/// guest clock runs at rate `1 + ρ(t)` guest ns per host ns, with
/// `ρ(t) = drift_ppm·1e-6 + w(t) + wander_ppm·1e-6·sin(2πt/wander_period + wander_phase) + Σ frequency steps`,
/// where `w` is a random walk with `freq_rw_ppb` ppb per √s. Its reading is
/// `guest(h) = h − offset_ns + ∫ρ + Σ offset steps`.
struct clock_model {
  std::int64_t offset_ns = 0;       ///< host − guest at the trace start
  double drift_ppm = 0;             ///< constant frequency error of the guest
  double freq_rw_ppb = 0;           ///< frequency random walk, ppb per √s (σ of the increment over 1 s)
  double wander_ppm = 0;            ///< amplitude of the sinusoidal frequency wander
  std::int64_t wander_period_ns = 600'000'000'000;  ///< its period
  double wander_phase_rad = 0;      ///< its phase at the trace start
  std::vector<offset_step> offset_steps{};
  std::vector<frequency_step> frequency_steps{};
  std::int64_t knot_ns = 100'000'000;  ///< spacing of the truth map's knots

  // Stamp imperfections (they do not change the clock).
  std::int64_t host_quantum_ns = 1;   ///< host stamps are rounded down to a multiple of this
  std::int64_t guest_quantum_ns = 1;  ///< guest stamps are rounded down to a multiple of this
  double host_noise_ns = 0;           ///< σ of Gaussian noise added to every host stamp (t1, t2)
  double guest_noise_ns = 0;          ///< σ of Gaussian noise added to every guest stamp (g)
  double glitch_prob = 0;             ///< probability that a guest stamp is a glitch
  std::int64_t glitch_ns = 0;         ///< a glitched guest stamp is off by this much (e.g. −20000: early)

  friend bool operator==(const clock_model&, const clock_model&) = default;

  /// The largest sum of the offset steps' magnitudes (2^62 ns).
  static constexpr std::int64_t max_offset_step_sum_ns = std::int64_t{1} << 62;

  /// Deprecated (one release): use the free `validate(x)`.
  [[deprecated("use sim::validate(x)")]] [[nodiscard]] errc validate() const noexcept;
};

/// `errc::ok`, `out_of_range` (offset steps whose magnitudes sum above
/// `max_offset_step_sum_ns`), or `invalid_argument` (knot <= 0, quanta <= 0, period <= 0,
/// negative noise or random walk, glitch_prob outside [0, 1], |rates| >= 10%,
/// steps at negative times), `non_finite` (NaN / inf).
[[nodiscard]] inline expected<void, errc> validate(const clock_model& x) noexcept {
  const errc e = [&x]() noexcept -> errc {
    for (double v : {x.drift_ppm, x.freq_rw_ppb, x.wander_ppm, x.wander_phase_rad, x.host_noise_ns, x.guest_noise_ns, x.glitch_prob})
      if (!std::isfinite(v)) return errc::non_finite;
    for (const auto& s : x.frequency_steps)
      if (!std::isfinite(s.delta_ppm)) return errc::non_finite;
    if (x.knot_ns <= 0 || x.host_quantum_ns <= 0 || x.guest_quantum_ns <= 0 || x.wander_period_ns <= 0)
      return errc::invalid_argument;
    if (x.freq_rw_ppb < 0 || x.host_noise_ns < 0 || x.guest_noise_ns < 0 || x.glitch_prob < 0 || x.glitch_prob > 1)
      return errc::invalid_argument;
    double total_ppm = std::abs(x.drift_ppm) + std::abs(x.wander_ppm);
    for (const auto& s : x.frequency_steps) {
      if (s.at_ns < 0) return errc::invalid_argument;
      total_ppm += std::abs(s.delta_ppm);
    }
    // Offset steps: their running sum must stay far from int64's limits (a
    // wrapped sum would silently move the truth).
    i128 step_sum = 0;
    for (const auto& s : x.offset_steps) {
      if (s.at_ns < 0) return errc::invalid_argument;
      step_sum += s.delta_ns < 0 ? -static_cast<i128>(s.delta_ns) : static_cast<i128>(s.delta_ns);
      if (step_sum > x.max_offset_step_sum_ns) return errc::out_of_range;
    }
    if (total_ppm >= 1e5) return errc::invalid_argument;
    return errc::ok;
  }();
  if (e != errc::ok) return unexpected(e);
  return {};
}

inline errc clock_model::validate() const noexcept {
  const auto v = sim::validate(*this);
  return v ? errc::ok : v.error();
}

/// The exact guest clock of one simulated run: guest ns as a function of host
/// ns, piecewise linear with integer knots, possibly discontinuous at offset
/// steps. Outside the simulated span it continues with the first (last)
/// piece's rate.
class truth_map {
 public:
  /// One continuous piece: the guest reading is interpolated between
  /// `(h0, g0)` and `(h1, g1)` for host times in `[h0, h1)`.
  struct piece {
    std::int64_t h0, g0, h1, g1;
  };

  /// The most knots of a regular grid (`span / knot`); more is `errc::oversized`.
  static constexpr std::size_t max_knots = 10'000'000;

  truth_map() = default;

  /// Realise `m` for host times `[start_ns, start_ns + span_ns]` from `seed`
  /// (the random walk is the only random part). `m` must be valid.
  /// Errors: the model's `validate()` error, `errc::invalid_argument` for a
  /// negative span, `errc::oversized` for `span / knot >= max_knots`, `errc::overflow` if a reading leaves int64.
  template <class = void>
  static expected<truth_map, errc> make(const clock_model& m, std::int64_t start_ns, std::int64_t span_ns,
                                        std::uint64_t seed) {
    if (auto v = validate(m); !v) return unexpected(v.error());
    if (span_ns < 0) return unexpected(errc::invalid_argument);
    if (span_ns / m.knot_ns >= static_cast<std::int64_t>(max_knots)) return unexpected(errc::oversized);
    const auto end = checked_add(start_ns, span_ns);
    if (!end) return unexpected(errc::overflow);
    const auto g_start = checked_sub(start_ns, m.offset_ns);
    if (!g_start) return unexpected(errc::overflow);

    // Knot times: the regular grid plus every step instant.
    std::vector<std::int64_t> times;
    for (std::int64_t t = 0; t < span_ns; t += std::min(m.knot_ns, span_ns - t)) times.push_back(t);
    times.push_back(span_ns);
    for (const auto& s : m.offset_steps)
      if (s.at_ns <= span_ns) times.push_back(s.at_ns);
    for (const auto& s : m.frequency_steps)
      if (s.at_ns <= span_ns) times.push_back(s.at_ns);
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());

    rng r(seed);
    const double omega = 2.0 * std::numbers::pi / static_cast<double>(m.wander_period_ns);
    const double wander = m.wander_ppm * 1e-6;
    // Accumulated extra phase (guest − host beyond the initial offset), in ns,
    // kept in long double; the random-walk frequency is piecewise constant per
    // knot interval (so the truth stays linear between knots).
    long double phase = 0;
    double rw = 0;
    std::int64_t step_total = 0;
    truth_map tm;
    tm.pieces_.clear();
    tm.start_ns_ = start_ns;
    tm.end_ns_ = *end;
    for (std::size_t i = 0; i + 1 < times.size(); ++i) {
      const std::int64_t ta = times[i], tb = times[i + 1];
      // Offset steps at ta apply from ta on.
      for (const auto& s : m.offset_steps)
        if (s.at_ns == ta) step_total += s.delta_ns;
      double base = m.drift_ppm * 1e-6 + rw;
      for (const auto& s : m.frequency_steps)
        if (s.at_ns <= ta) base += s.delta_ppm * 1e-6;
      const double dt = static_cast<double>(tb - ta);
      // ∫ of the sinusoid over [ta, tb], exactly.
      const double sin_int =
          wander == 0 ? 0.0
                      : wander / omega *
                            (std::cos(omega * static_cast<double>(ta) + m.wander_phase_rad) -
                             std::cos(omega * static_cast<double>(tb) + m.wander_phase_rad));
      const long double phase_a = phase;
      phase += static_cast<long double>(base * dt + sin_int);
      const auto ga = to_guest(start_ns + ta, phase_a, step_total, m.offset_ns);
      const auto gb = to_guest(start_ns + tb, phase, step_total, m.offset_ns);
      if (!ga || !gb) return unexpected(errc::overflow);
      if (*gb < *ga) return unexpected(errc::invalid_argument);  // a clock running backwards
      tm.pieces_.push_back({start_ns + ta, *ga, start_ns + tb, *gb});
      if (m.freq_rw_ppb > 0) rw += m.freq_rw_ppb * 1e-9 * std::sqrt(dt * 1e-9) * r.standard_normal();
    }
    if (tm.pieces_.empty()) tm.pieces_.push_back({start_ns, *g_start, start_ns + 1, *g_start + 1});
    return tm;
  }

  /// The guest clock's reading at host time `h`:
  /// `g0 + floor((h − h0)·(g1 − g0) / (h1 − h0))` on the piece containing `h`
  /// (at an offset step, `h` belongs to the piece that starts there). Outside
  /// the realised span the first or last piece is extended. Saturates at the
  /// int64 limits instead of overflowing.
  [[nodiscard]] std::int64_t guest_at(std::int64_t h) const noexcept {
    const piece& p = find_by_host(h);
    const i128 num = (static_cast<i128>(h) - p.h0) * (static_cast<i128>(p.g1) - p.g0);
    const i128 v = static_cast<i128>(p.g0) + floor_div(num, static_cast<i128>(p.h1) - p.h0);
    return saturate(v);
  }

  /// The host time at which the guest clock reads `g`: the smallest host time
  /// `h` with `guest_at(h) >= g` within the earliest piece whose guest range
  /// `[g0, g1]` holds `g` (so `host_at(guest_at(h))` is `h` exactly when the
  /// guest runs at least as fast as the host, and at most 1 ns early
  /// otherwise). A guest reading skipped by a forward step maps to the step
  /// instant; one repeated after a backward step maps to its first occurrence.
  /// Outside the realised span the first or last piece is extended.
  [[nodiscard]] std::int64_t host_at(std::int64_t g) const noexcept {
    const piece* chosen = &pieces_.back();
    if (g < pieces_.front().g0) {
      chosen = &pieces_.front();
    } else {
      for (const auto& p : pieces_) {
        if (g <= p.g1) {  // first piece reaching g
          chosen = &p;
          break;
        }
      }
    }
    const piece& p = *chosen;
    if (p.g1 == p.g0) return p.h0;
    if (g <= p.g0 && &p != &pieces_.front()) return p.h0;
    // smallest h with g0 + floor((h−h0)(g1−g0)/(h1−h0)) >= g  <=>  (h−h0)(g1−g0) >= (g−g0)(h1−h0)
    const i128 num = (static_cast<i128>(g) - p.g0) * (static_cast<i128>(p.h1) - p.h0);
    const i128 v = static_cast<i128>(p.h0) + ceil_div(num, static_cast<i128>(p.g1) - p.g0);
    return saturate(v);
  }

  /// The true offset host − guest at host time `h` (exact, integer).
  [[nodiscard]] std::int64_t offset_at(std::int64_t h) const noexcept {
    return saturate(static_cast<i128>(h) - guest_at(h));
  }

  /// The guest rate (guest ns per host ns) at host time `h`, from the piece
  /// holding `h`. The true slope of the guest→host map is its inverse.
  [[nodiscard]] double rate_at(std::int64_t h) const noexcept {
    const piece& p = find_by_host(h);
    return static_cast<double>(p.g1 - p.g0) / static_cast<double>(p.h1 - p.h0);
  }

  /// Host times of the realised span.
  [[nodiscard]] std::int64_t start_ns() const noexcept { return start_ns_; }
  [[nodiscard]] std::int64_t end_ns() const noexcept { return end_ns_; }
  [[nodiscard]] const std::vector<piece>& pieces() const noexcept { return pieces_; }

 private:
  static std::optional<std::int64_t> to_guest(std::int64_t h, long double phase,
                                              std::int64_t steps, std::int64_t offset) {
    const long double rounded = std::floor(phase + 0.5L);
    if (!(std::abs(rounded) < 4e18L)) return std::nullopt;
    const i128 v = static_cast<i128>(h) - offset + static_cast<std::int64_t>(rounded) + steps;
    if (v > std::numeric_limits<std::int64_t>::max() || v < std::numeric_limits<std::int64_t>::min())
      return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  static std::int64_t saturate(i128 v) noexcept {
    if (v > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
    if (v < std::numeric_limits<std::int64_t>::min()) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(v);
  }
  const piece& find_by_host(std::int64_t h) const noexcept {
    // last piece with h0 <= h
    auto it = std::upper_bound(pieces_.begin(), pieces_.end(), h,
                               [](std::int64_t x, const piece& p) { return x < p.h0; });
    if (it == pieces_.begin()) return pieces_.front();
    return *(it - 1);
  }

  std::vector<piece> pieces_{{0, 0, 1, 1}};
  std::int64_t start_ns_ = 0;
  std::int64_t end_ns_ = 1;
};

/// How recorded stamps deviate from the clocks: quantisation, Gaussian noise
/// and glitches, from the stamp fields of a `clock_model`.
struct stamp_model {
  const clock_model* m;
  /// A host stamp of the host instant `h`: `h + round(N(0, host_noise))`,
  /// rounded down to a multiple of `host_quantum`.
  std::int64_t host_stamp(std::int64_t h, rng& r) const noexcept {
    std::int64_t v = h;
    if (m->host_noise_ns > 0) v += static_cast<std::int64_t>(std::llround(m->host_noise_ns * r.standard_normal()));
    return floor_to(v, m->host_quantum_ns);
  }
  /// A guest stamp of the true guest reading `g`: noise as above, then with
  /// probability `glitch_prob` `+glitch_ns`, then rounded down to a multiple
  /// of `guest_quantum`. `glitched` tells whether a glitch was applied.
  std::int64_t guest_stamp(std::int64_t g, rng& r, bool& glitched) const noexcept {
    std::int64_t v = g;
    if (m->guest_noise_ns > 0) v += static_cast<std::int64_t>(std::llround(m->guest_noise_ns * r.standard_normal()));
    glitched = m->glitch_prob > 0 && r.bernoulli(m->glitch_prob);
    if (glitched) v += m->glitch_ns;
    return floor_to(v, m->guest_quantum_ns);
  }
  static std::int64_t floor_to(std::int64_t v, std::int64_t q) noexcept {
    if (q <= 1) return v;
    return static_cast<std::int64_t>(floor_div(v, q) * q);
  }
};

}  // namespace tsync::sim
