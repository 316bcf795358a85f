#pragma once
/// \file
/// Offline discontinuity handling that needs the order of the bursts, not
/// only their guest times: a guest reboot (or any backward step of the guest
/// clock) makes guest times repeat, so no single guest→host model can hold
/// both sides. The probes are split into *epochs* (runs of bursts, in burst
/// order, whose guest times never go backwards) and each epoch gets its own
/// model. The fits themselves refuse a trace with more than one epoch
/// (`errc::ambiguous`): they order bursts by guest time and would merge two
/// boots into one timeline.
///
/// Forward discontinuities (pause/resume, suspend, a forward clock step, a
/// frequency step) keep guest times increasing and are handled inside one
/// epoch: the `segmented` estimator splits its model there and bridges the
/// gap with the union of both sides' bounds (`boundary_cause::gap`), and the
/// per-burst models do the same between two bursts whose hard intervals
/// cannot both hold under `max_drift` (see `interpolate_bursts`).

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/types.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// The probes of one epoch (a boot of the guest, or the time between two
/// backward steps of its clock), in input order.
struct epoch {
  std::uint32_t first_burst = 0;     ///< burst number of its first burst
  std::vector<probe_sample> probes;
};

/// Split probes into epochs: bursts are taken in burst-number order, and a
/// burst whose guest stamps all lie below the smallest guest stamp of the
/// burst before starts a new epoch (the guest clock went backwards: a reboot,
/// an agent on a restarted clock, a backward step). Empty input gives no
/// epochs.
template <class = void>
[[nodiscard]] inline std::vector<epoch> split_epochs(std::span<const probe_sample> probes) {
  std::vector<probe_sample> v(probes.begin(), probes.end());
  std::stable_sort(v.begin(), v.end(), [](const probe_sample& a, const probe_sample& b) { return a.burst < b.burst; });
  std::vector<epoch> out;
  bool have_prev = false;
  std::int64_t prev_lo = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    std::int64_t lo = v[i].g, hi = v[i].g;
    while (j < v.size() && v[j].burst == v[i].burst) {
      lo = std::min(lo, v[j].g);
      hi = std::max(hi, v[j].g);
      ++j;
    }
    if (!have_prev || hi < prev_lo) out.push_back(epoch{v[i].burst, {}});
    out.back().probes.insert(out.back().probes.end(), v.begin() + static_cast<std::ptrdiff_t>(i),
                             v.begin() + static_cast<std::ptrdiff_t>(j));
    prev_lo = lo;
    have_prev = true;
    i = j;
  }
  return out;
}

/// Fit every epoch with `fit` (a callable `(span<const probe_sample>) ->
/// expected<model, errc>`, e.g. a lambda over `estimate::fit(name, …)`); the
/// first failure is returned.
template <class Fit>
[[nodiscard]] expected<std::vector<model>, errc> fit_epochs(std::span<const probe_sample> probes, Fit&& fit) {
  std::vector<model> out;
  for (const auto& e : split_epochs(probes)) {
    auto m = fit(std::span<const probe_sample>(e.probes));
    if (!m) return unexpected(m.error());
    out.push_back(std::move(*m));
  }
  if (out.empty()) return unexpected(errc::empty_input);
  return out;
}

}  // namespace tsync::estimate
