#pragma once
/// \file
/// The estimator registry: look estimators up by name.
///
/// A `registry` holds the built-in estimators and can be extended at run
/// time: `add` registers another one (the Eigen-based `regression` is added by
/// `register_regression(registry&)` from `tsync/estimate/regression_eigen.hpp`,
/// which a program includes explicitly and links with `tsync::eigen`). No
/// macro changes what this header registers.
///
/// The free functions `estimators()`, `names()` and `fit(name, probes, opt)`
/// use `default_registry()`, the process-wide registry. Register estimators at
/// start-up, before other threads use it: `add` invalidates the spans that
/// `estimators()` returned earlier.

#include <array>
#include <span>
#include <string_view>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/estimate/burst.hpp"
#include "tsync/estimate/kalman.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/trace.hpp"
#include "tsync/estimate/types.hpp"

namespace tsync::inline TSYNC_ABI::estimate {

/// An estimator's fit function.
using fit_function = expected<model, errc> (*)(std::span<const probe_sample> probes, const fit_options& opt);

/// One registered estimator.
struct estimator_info {
  std::string_view name;
  std::string_view kind;     ///< "per-burst" or "whole-trace"
  std::string_view summary;  ///< one line
  fit_function fit = nullptr;
};

namespace detail {
template <class E> expected<model, errc> fit_burst(std::span<const probe_sample> p, const fit_options& o) {
  return fit_per_burst<E>(p, o);
}
template <class E> expected<model, errc> fit_trace(std::span<const probe_sample> p, const fit_options& o) {
  return E{}.fit(p, o);
}
}  // namespace detail

/// A set of estimators by name (see the file comment).
class registry {
 public:
  /// The built-in estimators, in a stable order (per-burst baselines first).
  template <class = void>
  registry() {
    using namespace detail;
    list_ = {
        {"fastest_response", "per-burst", "trace-cmd's minimum-RTT probe, interpolated between bursts",
         &fit_burst<fastest_response_estimator>},
        {"histogram_peak", "per-burst", "trace-cmd's histogram mode, repaired (signed, data-sized bins, bin centre)",
         &fit_burst<histogram_peak_estimator>},
        {"median", "per-burst", "median midpoint offset with an order-statistic interval", &fit_burst<median_estimator>},
        {"split_envelope", "per-burst", "per-direction minima: centre of [max(t1-g), min(t2-g)]",
         &fit_burst<split_envelope_estimator>},
        {"convex_hull", "whole-trace", "exact feasible (offset, drift) polygon; envelope-tangent line",
         &fit_trace<convex_hull_estimator>},
        {"segmented", "whole-trace", "hull segments split at clock steps and non-linearity; asymmetry changes detected",
         &fit_trace<segmented_estimator>},
        {"kalman", "whole-trace", "offset+frequency Kalman filter with RTS smoother over per-burst envelope centres",
         &fit_trace<kalman_estimator>},
    };
  }

  /// Register `e`. Errors: `invalid_argument` for an empty name or no fit
  /// function, `duplicate_id` when the name is taken.
  template <class = void>
  expected<void, errc> add(const estimator_info& e) {
    if (e.name.empty() || e.fit == nullptr) return unexpected(errc::invalid_argument);
    if (find(e.name) != nullptr) return unexpected(errc::duplicate_id);
    list_.push_back(e);
    return {};
  }
  /// Every registered estimator, in registration order.
  [[nodiscard]] std::span<const estimator_info> list() const noexcept { return list_; }
  /// The estimator called `name`, or null.
  [[nodiscard]] const estimator_info* find(std::string_view name) const noexcept {
    for (const auto& e : list_)
      if (e.name == name) return &e;
    return nullptr;
  }
  /// Run the estimator called `name` (`not_found` for an unknown name).
  template <class = void>
  [[nodiscard]] expected<model, errc> fit(std::string_view name, std::span<const probe_sample> probes,
                                          const fit_options& opt = {}) const {
    const auto* e = find(name);
    if (e == nullptr) return unexpected(errc::not_found);
    return e->fit(probes, opt);
  }

 private:
  std::vector<estimator_info> list_;
};

/// The process-wide registry used by `estimators()`, `names()` and `fit()`.
template <class = void>
[[nodiscard]] inline registry& default_registry() {
  static registry r;
  return r;
}

/// Every estimator of the default registry, in a stable order (per-burst
/// baselines first, then whole-trace ones, then those registered later).
template <class = void>
[[nodiscard]] inline std::span<const estimator_info> estimators() noexcept { return default_registry().list(); }

/// The names of every registered estimator.
template <class = void>
[[nodiscard]] inline std::vector<std::string_view> names() {
  std::vector<std::string_view> v;
  for (const auto& e : estimators()) v.push_back(e.name);
  return v;
}

/// Run the estimator called `name` of the default registry. Errors:
/// `not_found` for an unknown name, otherwise the estimator's own
/// (`empty_input`, `all_rejected`, `causality_violation` / `duplicate_id` /
/// `out_of_range` in strict mode, `non_finite` / `invalid_argument` for bad
/// options, `infeasible`).
template <class = void>
[[nodiscard]] inline expected<model, errc> fit(std::string_view name, std::span<const probe_sample> probes,
                                              const fit_options& opt = {}) {
  return default_registry().fit(name, probes, opt);
}

}  // namespace tsync::estimate
