#pragma once
/// \file
/// The estimator registry: look estimators up by name.
///
/// `names()` lists every estimator; `fit(name, probes, options)` runs one and
/// returns its model. The Eigen-based `regression` is registered only when the
/// including translation unit defines `TSYNC_HAVE_EIGEN` to a non-zero value
/// (and links `tsync::eigen`); keep that definition the same in every
/// translation unit of a program.

#include <array>
#include <span>
#include <string_view>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/burst.hpp"
#include "tsync/estimate/kalman.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/trace.hpp"
#include "tsync/estimate/types.hpp"

#if defined(TSYNC_HAVE_EIGEN) && TSYNC_HAVE_EIGEN
#include "tsync/estimate/regression_eigen.hpp"
#include "tsync/core/config.hpp"
#define TSYNC_ESTIMATE_HAS_REGRESSION 1
#endif

namespace tsync::inline TSYNC_ABI::estimate {

/// One registered estimator.
struct estimator_info {
  std::string_view name;
  std::string_view kind;     ///< "per-burst" or "whole-trace"
  std::string_view summary;  ///< one line
};

/// Every registered estimator, in a stable order (per-burst baselines first).
[[nodiscard]] inline std::span<const estimator_info> estimators() noexcept {
  static constexpr std::array list{
      estimator_info{"fastest_response", "per-burst", "trace-cmd's minimum-RTT probe, interpolated between bursts"},
      estimator_info{"histogram_peak", "per-burst", "trace-cmd's histogram mode, repaired (signed, data-sized bins, bin centre)"},
      estimator_info{"median", "per-burst", "median midpoint offset with an order-statistic interval"},
      estimator_info{"split_envelope", "per-burst", "per-direction minima: centre of [max(t1-g), min(t2-g)]"},
      estimator_info{"convex_hull", "whole-trace", "exact feasible (offset, drift) polygon; envelope-tangent line"},
      estimator_info{"segmented", "whole-trace", "hull segments split at clock steps and non-linearity; asymmetry changes detected"},
      estimator_info{"kalman", "whole-trace", "offset+frequency Kalman filter with RTS smoother over per-burst envelope centres"},
#ifdef TSYNC_ESTIMATE_HAS_REGRESSION
      estimator_info{"regression", "whole-trace", "chrony-style delay-weighted least squares with asymmetry term (Eigen)"},
#endif
  };
  return list;
}

/// The names of every registered estimator.
[[nodiscard]] inline std::vector<std::string_view> names() {
  std::vector<std::string_view> v;
  for (const auto& e : estimators()) v.push_back(e.name);
  return v;
}

/// Run the estimator called `name`. Errors: `not_found` for an unknown name,
/// otherwise the estimator's own (`empty_input`, `all_rejected`,
/// `causality_violation` / `duplicate_id` / `out_of_range` in strict mode,
/// `non_finite` / `invalid_argument` for bad options, `infeasible`).
[[nodiscard]] inline expected<model, errc> fit(std::string_view name, std::span<const probe_sample> probes,
                                              const fit_options& opt = {}) {
  if (name == fastest_response_estimator::name) return fit_per_burst<fastest_response_estimator>(probes, opt);
  if (name == histogram_peak_estimator::name) return fit_per_burst<histogram_peak_estimator>(probes, opt);
  if (name == median_estimator::name) return fit_per_burst<median_estimator>(probes, opt);
  if (name == split_envelope_estimator::name) return fit_per_burst<split_envelope_estimator>(probes, opt);
  if (name == convex_hull_estimator::name) return convex_hull_estimator{}.fit(probes, opt);
  if (name == segmented_estimator::name) return segmented_estimator{}.fit(probes, opt);
  if (name == kalman_estimator::name) return kalman_estimator{}.fit(probes, opt);
#ifdef TSYNC_ESTIMATE_HAS_REGRESSION
  if (name == regression_estimator::name) return regression_estimator{}.fit(probes, opt);
#endif
  return unexpected(errc::not_found);
}

}  // namespace tsync::estimate
