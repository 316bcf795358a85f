#pragma once
/// \file
/// Simulated two-way link between the host (initiator) and the guest
/// (responder): per-direction minimum delay plus random queueing, loss,
/// duplicates, reordering (a message held back long enough to arrive after
/// later ones), delay spikes, and asymmetry steps (a route change in one
/// direction at a time). All delays are in host ns.
///
/// `link_state` draws per-message outcomes in virtual time and is what a
/// simulated transport uses:
///
/// ```
/// tsync::sim::link_state link(scenario.link, seed);
/// auto d = link.send(tsync::sim::direction::forward, t_send);  // full outcome
/// if (!d.delivered) { /* lost */ }
/// else { deliver_at(d.arrival); if (d.duplicate) deliver_at(*d.duplicate); }
/// std::optional<std::int64_t> a = link.forward(t_send);         // first copy only; nullopt = lost
/// ```
///
/// A delivered message's delay is `min(dir, t_send) + queue(dir)` plus, with
/// probability `spike_prob`, a draw of `spike_delay`, plus, with probability
/// `reorder_prob`, a draw of `reorder_delay`. A duplicate (probability
/// `dup_prob`) arrives `dup_delay` after the first copy. The outcome of each
/// call depends only on the link's seed and the number of earlier calls, never
/// on the times passed in, so the same sequence of calls replays exactly.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/sim/random.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::sim {

/// Direction of a message: forward = host → guest, backward = guest → host.
enum class direction : std::uint8_t { forward, backward };

/// A route change in one direction: from `at_ns` (relative to the trace start,
/// compared with the send time) the minimum delay of `dir` changes by `delta_ns`.
struct asymmetry_step {
  std::int64_t at_ns = 0;
  direction dir = direction::forward;
  std::int64_t delta_ns = 0;
  friend constexpr bool operator==(const asymmetry_step&, const asymmetry_step&) = default;
};

/// One direction of the link.
struct path_model {
  std::int64_t min_ns = 10'000;             ///< the minimum one-way delay (stamping latency included)
  distribution queue = exponential(2'000);  ///< queueing added to every message (its support should be >= 0)
  friend bool operator==(const path_model&, const path_model&) = default;
};

/// Both directions plus the impairments shared by them (probabilities are per
/// message and per direction).
struct link_model {
  path_model fwd{};                                  ///< host → guest
  path_model back{};                                 ///< guest → host
  double loss_prob = 0;                              ///< a message is lost
  double dup_prob = 0;                               ///< a delivered message arrives twice
  distribution dup_delay = exponential(5'000);       ///< the second copy's lag behind the first
  double reorder_prob = 0;                           ///< a message is held back
  distribution reorder_delay = uniform(2'500'000, 5'000'000);  ///< how long it is held
  double spike_prob = 0;                             ///< a message suffers a delay spike
  distribution spike_delay = uniform(100'000, 1'000'000);      ///< the spike's extra delay
  std::vector<asymmetry_step> asymmetry_steps{};     ///< route changes

  friend bool operator==(const link_model&, const link_model&) = default;

  /// Deprecated (one release): use the free `validate(x)`.
  [[deprecated("use sim::validate(x)")]] [[nodiscard]] errc validate() const noexcept;

  /// The minimum delay of `dir` for a message sent at `t_rel` (ns since the
  /// trace start), after every asymmetry step at or before `t_rel`.
  [[nodiscard]] std::int64_t min_delay(direction dir, std::int64_t t_rel) const noexcept {
    std::int64_t m = dir == direction::forward ? fwd.min_ns : back.min_ns;
    for (const auto& s : asymmetry_steps)
      if (s.dir == dir && s.at_ns <= t_rel) m += s.delta_ns;
    return m;
  }

  /// The smallest possible one-way delay of `dir` at `t_rel`: the minimum
  /// delay plus the lower end of the queueing distribution's support.
  [[nodiscard]] double floor_delay(direction dir, std::int64_t t_rel) const noexcept {
    const auto& q = dir == direction::forward ? fwd.queue : back.queue;
    return static_cast<double>(min_delay(dir, t_rel)) + q.min_value();
  }

  /// The asymmetry floor at `t_rel`: `(m_f − m_b)/2` with `m` the smallest
  /// possible one-way delays. No two-way estimator can see it; an estimator
  /// centred on the feasible interval reads host times early by this much
  /// (its corrected-time error tends to `−floor`).
  [[nodiscard]] double asymmetry_floor(std::int64_t t_rel) const noexcept {
    return (floor_delay(direction::forward, t_rel) - floor_delay(direction::backward, t_rel)) / 2;
  }
};

/// `errc::ok`, or the first problem: a distribution's own error,
/// `invalid_argument` for probabilities outside [0, 1], a negative minimum
/// delay (also after steps), a delay distribution that can be negative
/// (its `min_value() < 0`), or a step at a negative time; `out_of_range`
/// for steps that raise a minimum delay beyond int64.
[[nodiscard]] inline expected<void, errc> validate(const link_model& x) noexcept {
  const errc e = [&x]() noexcept -> errc {
    for (double p : {x.loss_prob, x.dup_prob, x.reorder_prob, x.spike_prob}) {
      if (!std::isfinite(p)) return errc::non_finite;
      if (p < 0 || p > 1) return errc::invalid_argument;
    }
    for (const distribution* d : {&x.fwd.queue, &x.back.queue, &x.dup_delay, &x.reorder_delay, &x.spike_delay}) {
      if (auto v = validate(*d); !v) return v.error();
      if (d->min_value() < 0) return errc::invalid_argument;
    }
    std::int64_t mf = x.fwd.min_ns, mb = x.back.min_ns;
    if (mf < 0 || mb < 0) return errc::invalid_argument;
    for (const auto& s : x.asymmetry_steps) {
      if (s.at_ns < 0) return errc::invalid_argument;
      std::int64_t& m = s.dir == direction::forward ? mf : mb;  // >= 0 here: only a rise can overflow
      if (s.delta_ns > 0 && m > std::numeric_limits<std::int64_t>::max() - s.delta_ns) return errc::out_of_range;
      m += s.delta_ns;
      if (mf < 0 || mb < 0) return errc::invalid_argument;
    }
    return errc::ok;
  }();
  if (e != errc::ok) return unexpected(e);
  return {};
}

inline errc link_model::validate() const noexcept {
  const auto v = sim::validate(*this);
  return v ? errc::ok : v.error();
}

/// The outcome of one message.
struct delivery {
  bool delivered = false;                   ///< false: lost
  std::int64_t arrival = 0;                 ///< arrival time of the (first) copy
  std::optional<std::int64_t> duplicate{};  ///< arrival time of a second copy, if any
  bool spiked = false;                      ///< a delay spike was added
  bool reordered = false;                   ///< the message was held back
  explicit operator bool() const noexcept { return delivered; }
};

/// Per-message outcomes of a `link_model` in virtual time (see the file
/// comment). `start_ns` is the host time the model's step times are relative to.
class link_state {
 public:
  /// Keeps a copy of `model` (which should be valid, see `link_model::validate`).
  link_state(link_model model, std::uint64_t seed, std::int64_t start_ns = 0)
      : model_(std::move(model)), rng_(seed), start_ns_(start_ns) {}

  /// Send a message in direction `dir` at host time `t_send`.
  delivery send(direction dir, std::int64_t t_send) noexcept {
    delivery d;
    const path_model& p = dir == direction::forward ? model_.fwd : model_.back;
    // Every call consumes the same number of draws (so outcomes stay aligned
    // whatever happens to earlier messages).
    const bool lost = rng_.bernoulli(model_.loss_prob);
    const double q = p.queue.sample(rng_);
    const bool spike = rng_.bernoulli(model_.spike_prob);
    const double spike_extra = model_.spike_delay.sample(rng_);
    const bool reorder = rng_.bernoulli(model_.reorder_prob);
    const double reorder_extra = model_.reorder_delay.sample(rng_);
    const bool dup = rng_.bernoulli(model_.dup_prob);
    const double dup_extra = model_.dup_delay.sample(rng_);
    ++sent_;
    if (lost) {
      ++lost_;
      return d;
    }
    double delay = static_cast<double>(model_.min_delay(dir, t_send - start_ns_)) + q;
    if (spike) {
      delay += spike_extra;
      ++spiked_;
    }
    if (reorder) {
      delay += reorder_extra;
      ++reordered_;
    }
    d.delivered = true;
    d.spiked = spike;
    d.reordered = reorder;
    d.arrival = t_send + static_cast<std::int64_t>(std::llround(std::max(0.0, delay)));
    if (dup) {
      ++duplicated_;
      d.duplicate = d.arrival + static_cast<std::int64_t>(std::llround(std::max(0.0, dup_extra)));
    }
    return d;
  }
  /// Host → guest; the first copy's arrival, nullopt when lost.
  std::optional<std::int64_t> forward(std::int64_t t_send) noexcept {
    auto d = send(direction::forward, t_send);
    return d ? std::optional<std::int64_t>(d.arrival) : std::nullopt;
  }
  /// Guest → host; the first copy's arrival, nullopt when lost.
  std::optional<std::int64_t> backward(std::int64_t t_send) noexcept {
    auto d = send(direction::backward, t_send);
    return d ? std::optional<std::int64_t>(d.arrival) : std::nullopt;
  }

  /// Counters since construction.
  [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }
  [[nodiscard]] std::uint64_t lost() const noexcept { return lost_; }
  [[nodiscard]] std::uint64_t duplicated() const noexcept { return duplicated_; }
  [[nodiscard]] std::uint64_t reordered() const noexcept { return reordered_; }
  [[nodiscard]] std::uint64_t spiked() const noexcept { return spiked_; }
  [[nodiscard]] const link_model& model() const noexcept { return model_; }

 private:
  link_model model_;
  rng rng_;
  std::int64_t start_ns_;
  std::uint64_t sent_ = 0, lost_ = 0, duplicated_ = 0, reordered_ = 0, spiked_ = 0;
};

}  // namespace tsync::sim
