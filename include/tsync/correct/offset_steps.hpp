#pragma once
/// \file
/// Offset changes in the middle of a trace (a guest writes its TSC, vCPU
/// hotplug, migration), located from the host's `kvm_write_tsc_offset` records.
///
/// KVM's offset is a step function of **host** time per vCPU: the record
/// `(host_tsc T_i, vcpu, previous_offset, next_offset)` says that from host
/// time `T_i` on, the guest TSC is `floor(host * ratio / 2^frac) + next_offset`
/// (modulo 2^64). `offset_periods` turns a vCPU's records into periods
/// `[T_i, T_{i+1})`, each with one offset (period 0, before the first write,
/// uses the first record's previous offset).
///
/// A guest event carries only a guest TSC, so which period it belongs to must
/// be inferred. `resolve_offset_steps` does it for one per-CPU guest stream,
/// which the ring buffer keeps in time order (monotonic within each period),
/// by the method of the 2012 kvm_write_tsc_offset proposal, made exact:
///
/// * event `j` can belong to period `p` only if its host time under `p`'s
///   offset, `H = ceil(((g − offset_p) mod 2^64) * 2^frac / ratio)`, lies in
///   `[T_p, T_{p+1})` (the converted time crosses the change at the switch);
/// * periods never decrease along the stream, and where the guest time goes
///   backward (`g_j < g_{j−1}`) the period must increase (the switch point);
/// * host times never decrease along the stream (this also rules out an offset
///   under which `g − offset` wraps modulo 2^64).
///
/// Among all assignments that satisfy these rules, the earliest and the latest
/// are found with one greedy pass each (O(events + periods)). Where they agree
/// the event is decided; where they differ and more than one period fits, the
/// data cannot decide (the case of several writes to the same guest time), and
/// the event is reported as ambiguous with its candidate offsets instead of a
/// guess.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/correct/batch.hpp"
#include "tsync/kvm/tsc.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::correct {

/// One `kvm:kvm_write_tsc_offset` trace record (host trace, x86-tsc clock).
/// Offsets are KVM's (guest − scaled host, modulo 2^64), as the tracepoint prints them.
struct tsc_offset_write {
  std::uint64_t host_tsc = 0;         ///< host TSC of the write
  std::uint32_t vcpu = 0;             ///< vCPU id
  std::uint64_t previous_offset = 0;  ///< offset before the write
  std::uint64_t next_offset = 0;      ///< offset from the write on
  friend constexpr bool operator==(const tsc_offset_write&, const tsc_offset_write&) = default;
};

/// One period of constant offset: host times `[host_start, next period's start)`.
struct offset_period {
  std::uint64_t host_start = 0;   ///< first host tick of the period (0 for period 0)
  std::uint64_t kvm_offset = 0;   ///< KVM offset in force
  friend constexpr bool operator==(const offset_period&, const offset_period&) = default;
};

/// The step function of one vCPU's KVM offset over host time.
class offset_periods {
 public:
  /// Build from the records of vCPU `vcpu` (records of other vCPUs are
  /// ignored). Errors: `errc::empty_input` (no record for this vCPU),
  /// `errc::unsorted_input` (host times decrease), `errc::invalid_argument`
  /// (a record's previous offset differs from the next offset of the record
  /// before it: a record is missing), `errc::zero_ratio` / `errc::bad_frac_bits`.
  /// The ratio is not part of the tracepoint: pass the vCPU's ratio from debugfs.
  template <class = void>
  [[nodiscard]] static expected<offset_periods, errc> make(std::span<const tsc_offset_write> writes,
                                                           std::uint32_t vcpu, std::uint64_t ratio = 1,
                                                           std::uint8_t frac_bits = 0) {
    const kvm::tsc_params probe{0, ratio, frac_bits};
    if (auto v = kvm::validate(probe); !v) return unexpected(v.error());
    offset_periods out;
    out.ratio_ = ratio;
    out.frac_ = frac_bits;
    const tsc_offset_write* prev = nullptr;
    for (const auto& w : writes) {
      if (w.vcpu != vcpu) continue;
      if (prev == nullptr) {
        out.periods_.push_back({0, w.previous_offset});
      } else {
        if (w.host_tsc < prev->host_tsc) return unexpected(errc::unsorted_input);
        if (w.previous_offset != prev->next_offset) return unexpected(errc::invalid_argument);
      }
      out.periods_.push_back({w.host_tsc, w.next_offset});
      prev = &w;
    }
    if (prev == nullptr) return unexpected(errc::empty_input);
    return out;
  }

  /// Number of periods (records + 1).
  [[nodiscard]] std::size_t size() const noexcept { return periods_.size(); }
  /// Period `p`.
  [[nodiscard]] const offset_period& period(std::size_t p) const noexcept { return periods_[p]; }
  /// All periods, by host time.
  [[nodiscard]] std::span<const offset_period> periods() const noexcept { return periods_; }
  /// KVM parameters of period `p`.
  [[nodiscard]] kvm::tsc_params params(std::size_t p) const noexcept {
    return {periods_[p].kvm_offset, ratio_, frac_};
  }
  /// The period in force at host time `h` (the last one starting at or before `h`).
  [[nodiscard]] std::size_t period_at_host(std::uint64_t h) const noexcept {
    const auto it = std::upper_bound(periods_.begin() + 1, periods_.end(), h,
                                     [](std::uint64_t v, const offset_period& p) { return v < p.host_start; });
    return static_cast<std::size_t>(it - periods_.begin()) - 1;
  }
  /// Host → guest: what the guest TSC reads at host time `h` (exact KVM forward map).
  [[nodiscard]] std::uint64_t to_guest(std::uint64_t h) const noexcept {
    return kvm::to_guest(h, params(period_at_host(h)));
  }
  /// Host time of guest stamp `g` under period `p`'s offset, when it falls in
  /// that period's host interval; empty otherwise.
  [[nodiscard]] std::optional<std::uint64_t> host_in_period(std::size_t p, std::uint64_t g) const noexcept {
    const auto h = kvm::to_host(g, params(p));
    if (!h) return std::nullopt;
    if (p > 0 && *h < periods_[p].host_start) return std::nullopt;
    if (p + 1 < periods_.size() && *h >= periods_[p + 1].host_start) return std::nullopt;
    return *h;
  }

 private:
  offset_periods() = default;
  std::vector<offset_period> periods_;
  std::uint64_t ratio_ = 1;
  std::uint8_t frac_ = 0;
};

/// A run of consecutive events of the stream with the same period range.
struct event_run {
  std::size_t begin = 0;         ///< first event index
  std::size_t end = 0;           ///< one past the last event index
  std::size_t first_period = 0;  ///< earliest consistent period
  std::size_t last_period = 0;   ///< latest consistent period
  /// True when the data decide the period of these events.
  [[nodiscard]] constexpr bool decided() const noexcept { return first_period == last_period; }
  friend constexpr bool operator==(const event_run&, const event_run&) = default;
};

class step_resolution;
template <class = void>
[[nodiscard]] expected<step_resolution, errc> resolve_offset_steps(const offset_periods&, std::span<const std::uint64_t>);

/// The periods assigned to a per-CPU guest stream, as runs of events.
class step_resolution {
 public:
  /// The runs, in stream order, covering `[0, events())`.
  [[nodiscard]] const std::vector<event_run>& runs() const noexcept { return runs_; }
  /// Number of events resolved.
  [[nodiscard]] std::size_t events() const noexcept { return runs_.empty() ? 0 : runs_.back().end; }
  /// Number of events the data cannot decide.
  [[nodiscard]] std::size_t ambiguous_events() const noexcept {
    std::size_t n = 0;
    for (const auto& r : runs_) n += r.decided() ? 0 : r.end - r.begin;
    return n;
  }
  /// The run holding event `i` (precondition: `i < events()`).
  [[nodiscard]] const event_run& run_of(std::size_t i) const noexcept {
    const auto it = std::upper_bound(runs_.begin(), runs_.end(), i,
                                     [](std::size_t v, const event_run& r) { return v < r.end; });
    return *it;
  }
  /// Indices where the stream switches to a later period for sure (the first
  /// event of each decided run whose period differs from the previous decided run's).
  template <class = void>
  [[nodiscard]] std::vector<std::size_t> switch_points() const {
    std::vector<std::size_t> out;
    std::optional<std::size_t> last;
    for (const auto& r : runs_) {
      if (!r.decided()) continue;
      if (last && *last != r.first_period) out.push_back(r.begin);
      last = r.first_period;
    }
    return out;
  }

 private:
  template <class>
  friend expected<step_resolution, errc> resolve_offset_steps(const offset_periods&,
                                                              std::span<const std::uint64_t>);
  std::vector<event_run> runs_;
};

/// Assign each event of a per-CPU guest stream (guest TSC values in ring-buffer
/// order) to an offset period (see the file comment). Errors:
/// `errc::infeasible` when no assignment satisfies the rules (the stream is not
/// monotonic within a period, events of another vCPU are mixed in, or records
/// are missing).
template <class>
[[nodiscard]] inline expected<step_resolution, errc> resolve_offset_steps(const offset_periods& periods,
                                                                          std::span<const std::uint64_t> guest) {
  step_resolution res;
  const std::size_t n = guest.size();
  if (n == 0) return res;
  const std::size_t np = periods.size();
  auto feasible = [&](std::size_t p, std::uint64_t g) { return periods.host_in_period(p, g).has_value(); };
  // Earliest assignment (forward greedy).
  // A period fits event j when the host time under its offset lies in the
  // period and does not go below the previous event's host time (the ring
  // buffer is in time order; this also rules out offsets under which
  // `g - offset` wraps modulo 2^64). Host times of later periods are later, so
  // the smallest fitting period also gives the smallest host time: the greedy
  // choice leaves the most room to the events after it.
  std::vector<std::uint32_t> lo(n);
  std::size_t p = 0;
  std::uint64_t prev_host = 0;
  for (std::size_t j = 0; j < n; ++j) {
    std::size_t need = p + ((j > 0 && guest[j] < guest[j - 1]) ? 1u : 0u);
    for (; need < np; ++need) {
      const auto h = periods.host_in_period(need, guest[j]);
      if (h && *h >= prev_host) {
        prev_host = *h;
        break;
      }
    }
    if (need >= np) return unexpected(errc::infeasible);
    lo[j] = static_cast<std::uint32_t>(need);
    p = need;
  }
  // Latest assignment (backward greedy), narrowed to the feasible candidates,
  // and runs built from the back.
  std::vector<event_run> back;
  std::size_t hi_next = np - 1;
  std::uint64_t next_host = ~std::uint64_t{0};
  for (std::size_t jj = n; jj-- > 0;) {
    std::size_t cap = np - 1;
    if (jj + 1 < n) {
      cap = hi_next;
      if (guest[jj + 1] < guest[jj]) {
        if (cap == 0) return unexpected(errc::infeasible);
        --cap;
      }
    }
    while (true) {
      const auto h = periods.host_in_period(cap, guest[jj]);
      if (h && *h <= next_host) {
        next_host = *h;
        break;
      }
      if (cap == 0) return unexpected(errc::infeasible);
      --cap;
    }
    std::size_t a = lo[jj];
    std::size_t b = cap;
    if (a > b) return unexpected(errc::infeasible);
    hi_next = b;
    if (a != b) {  // narrow: if only one period in [a, b] fits this event, it is decided
      std::size_t count = 0;
      std::size_t only = a;
      for (std::size_t q = a; q <= b && count < 2; ++q) {
        if (feasible(q, guest[jj])) {
          ++count;
          only = q;
        }
      }
      if (count == 1) a = b = only;
    }
    if (!back.empty() && back.back().first_period == a && back.back().last_period == b) {
      back.back().begin = jj;
    } else {
      back.push_back({jj, jj + 1, a, b});
    }
  }
  std::reverse(back.begin(), back.end());
  res.runs_ = std::move(back);
  return res;
}

/// Everything known about one event's host time.
struct step_result {
  std::optional<std::uint64_t> host;             ///< the host time, when the data decide
  std::vector<std::uint64_t> candidate_offsets;  ///< KVM offsets of the periods that fit (one when decided)
  std::vector<std::uint64_t> candidate_hosts;    ///< host time under each candidate
  /// True when the data cannot decide.
  [[nodiscard]] bool ambiguous() const noexcept { return !host.has_value(); }
};

/// The host time of event `i` (guest stamp `guest[i]`), or, when ambiguous, the
/// candidate offsets (the periods between the earliest and the latest
/// consistent assignment that fit the event) and the host time under each.
template <class = void>
[[nodiscard]] inline step_result resolve_event(const offset_periods& periods, const step_resolution& res,
                                               std::span<const std::uint64_t> guest, std::size_t i) {
  step_result out;
  const event_run& r = res.run_of(i);
  for (std::size_t p = r.first_period; p <= r.last_period; ++p) {
    if (auto h = periods.host_in_period(p, guest[i])) {
      out.candidate_offsets.push_back(periods.period(p).kvm_offset);
      out.candidate_hosts.push_back(*h);
    }
  }
  if (r.decided() && !out.candidate_hosts.empty()) out.host = out.candidate_hosts.front();
  return out;
}

/// Convert a resolved stream to host times. Stops at the first ambiguous event
/// with `errc::ambiguous` (its index in `index`; use `resolve_event` for its
/// candidates). `out` must be at least as long as `guest` (`errc::invalid_argument`).
template <class = void>
[[nodiscard]] inline expected<void, index_error> steps_to_host(const offset_periods& periods,
                                                               const step_resolution& res,
                                                               std::span<const std::uint64_t> guest,
                                                               std::span<std::uint64_t> out) noexcept {
  if (out.size() < guest.size() || res.events() != guest.size())
    return unexpected(index_error{errc::invalid_argument, 0});
  for (const auto& r : res.runs()) {
    if (!r.decided()) return unexpected(index_error{errc::ambiguous, r.begin});
    const kvm::tsc_params prm = periods.params(r.first_period);
    for (std::size_t i = r.begin; i < r.end; ++i) {
      const auto h = kvm::to_host(guest[i], prm);
      if (!h) return unexpected(index_error{h.error(), i});
      out[i] = *h;
    }
  }
  return {};
}

}  // namespace tsync::correct
