#pragma once
/// \file
/// Simulated clocks in virtual time, for tests and the simulator.
///
/// A `virtual_time` is the true time of a simulated world: an atomic count of
/// nanoseconds that the test sets or advances. A `simulated_clock` reads it
/// through its own offset and drift (both settable while running), and can
/// advance it by a fixed step on every read, so that a sequence of reads is
/// strictly increasing and a probe exchange sees a non-zero round trip even
/// when nothing else moves time.
///
/// All members are thread-safe: a responder thread and an initiator thread may
/// share one `virtual_time`.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "tsync/clock/adjusted_clock.hpp"
#include "tsync/clock/clock_source.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::clock {

/// The true time of a simulated world, in ns.
class virtual_time {
 public:
  explicit virtual_time(std::int64_t start = 0) noexcept : t_(start) {}
  [[nodiscard]] std::int64_t now() const noexcept { return t_.load(std::memory_order_acquire); }
  void set(std::int64_t t) noexcept { t_.store(t, std::memory_order_release); }
  /// Advance by `d` ns and return the new time.
  std::int64_t advance(std::int64_t d) noexcept { return t_.fetch_add(d, std::memory_order_acq_rel) + d; }

 private:
  std::atomic<std::int64_t> t_;
};

/// A clock of domain `D` that reads a shared `virtual_time` through an offset
/// and drift: `reading = apply_offset_drift(true_time, offset, drift_ppb, anchor)`.
/// `simulated_clock` is a host clock; a simulated guest is `basic_simulated_clock<guest>`.
template <clock_domain D> class basic_simulated_clock {
 public:
  using domain = D;
  /// `step_per_read` ns are added to the virtual time before each read (0: time moves only when set).
  explicit basic_simulated_clock(std::shared_ptr<virtual_time> time, offset_drift od = {},
                                 std::int64_t step_per_read = 0) noexcept
      : time_(std::move(time)), offset_(od.offset_ns), drift_(od.drift_ppb), anchor_(od.anchor),
        step_(step_per_read) {}
  [[nodiscard]] domain_time<D> now() noexcept { return at_ns<D>(now_raw()); }
  /// The same reading as a bare integer (the probe exchange's stamp).
  [[nodiscard]] std::int64_t now_raw() noexcept {
    const std::int64_t t = step_ != 0 ? time_->advance(step_) : time_->now();
    return reading_at(t);
  }
  [[nodiscard]] std::string_view name() const noexcept { return "simulated"; }
  /// The reading this clock gives at true time `t` (with the current offset and drift).
  [[nodiscard]] std::int64_t reading_at(std::int64_t t) const noexcept {
    return apply_offset_drift(t, offset_.load(std::memory_order_acquire), drift_.load(std::memory_order_acquire),
                              anchor_.load(std::memory_order_acquire));
  }
  /// Step the offset (a clock jump) at run time.
  void set_offset(std::int64_t ns) noexcept { offset_.store(ns, std::memory_order_release); }
  /// Change the rate error; the drift term restarts at zero from true time `anchor`.
  void set_drift(std::int64_t ppb, std::int64_t anchor) noexcept {
    anchor_.store(anchor, std::memory_order_release);
    drift_.store(ppb, std::memory_order_release);
  }
  [[nodiscard]] const std::shared_ptr<virtual_time>& time() const noexcept { return time_; }

 private:
  std::shared_ptr<virtual_time> time_;
  std::atomic<std::int64_t> offset_;
  std::atomic<std::int64_t> drift_;
  std::atomic<std::int64_t> anchor_;
  std::int64_t step_;
};

/// A simulated host clock.
using simulated_clock = basic_simulated_clock<host>;

static_assert(clock_source<simulated_clock>);

}  // namespace tsync::clock
