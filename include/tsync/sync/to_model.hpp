#pragma once
/// \file
/// A session's result as an estimator model: one vCPU's series estimates become
/// the piecewise-linear model (`estimate::model`, the format `tsync correct
/// --model` and `model::from_json` read) through the series' offsets, each with
/// its hard interval and the series' probe statistics.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/sync/session.hpp"

namespace tsync::inline TSYNC_ABI::sync {

/// Length of the longest prefix of `table` whose guest times strictly increase
/// (the order `correct` requires). Shorter than the table when the responder's
/// clock went backwards between series.
[[nodiscard]] inline std::size_t sorted_prefix(std::span<const sync_sample> table) noexcept {
  for (std::size_t i = 1; i < table.size(); ++i)
    if (!(table[i - 1].guest_time < table[i].guest_time)) return i;
  return table.size();
}

/// The per-series estimates of `r` as burst estimates (one per table sample, in table order).
[[nodiscard]] inline std::vector<estimate::burst_estimate> to_bursts(const vcpu_result& r) {
  namespace est = tsync::estimate;
  std::vector<est::burst_estimate> bursts;
  bursts.reserve(r.table.size());
  for (std::size_t i = 0; i < r.table.size(); ++i) {
    const auto& t = r.table[i];
    est::burst_estimate b;
    const std::int64_t off = t.offset.count();
    b.ref = raw_ns(t.guest_time);
    b.offset = off;
    b.hard = t.bounds ? est::interval{off + t.bounds->lo, off + t.bounds->hi} : est::interval{off, off};
    b.burst = static_cast<std::uint32_t>(i);
    for (const auto& rec : r.series) {
      if (rec.table_index == i && rec.estimate) {
        b.stats.probes_used = rec.estimate->used;
        b.stats.probes_rejected = rec.estimate->rejected;
        b.stats.min_rtt = rec.estimate->min_rtt;
        b.stats.bursts = 1;
      }
    }
    bursts.push_back(b);
  }
  return bursts;
}

/// The model of one vCPU's session result, named after the per-series estimator.
/// Errors: `errc::empty_input` when the vCPU has no sample.
[[nodiscard]] inline expected<estimate::model, errc> to_model(const vcpu_result& r, std::string estimator_name) {
  return estimate::interpolate_bursts(to_bursts(r), std::move(estimator_name), estimate::fit_options{});
}

}  // namespace tsync::sync
