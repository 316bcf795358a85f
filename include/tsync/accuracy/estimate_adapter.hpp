#pragma once
// Builds the harness's estimator entries from the tsync::estimate library
// (when it is present in this tree): one entry per name in
// tsync::estimate::names(), fitted with tsync::estimate::fit().

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tsync/accuracy/harness.hpp"

#if __has_include("tsync/estimate.hpp")
#include "tsync/estimate.hpp"
#include "tsync/core/config.hpp"
#define TSYNC_ACCURACY_HAVE_ESTIMATE 1
#else
#define TSYNC_ACCURACY_HAVE_ESTIMATE 0
#endif

namespace tsync::inline TSYNC_ABI::accuracy {

/// Whether real estimators are available in this build.
inline constexpr bool have_estimators = TSYNC_ACCURACY_HAVE_ESTIMATE != 0;

/// Names of the library's estimators (empty without the estimate family).
inline std::vector<std::string> library_estimator_names() {
  std::vector<std::string> out;
#if TSYNC_ACCURACY_HAVE_ESTIMATE
  for (const auto& n : tsync::estimate::names()) out.emplace_back(n);
#endif
  return out;
}

/// Entries for the named library estimators (all when `names` is empty).
inline std::vector<estimator_entry> library_entries(const std::vector<std::string>& names = {}) {
  std::vector<estimator_entry> out;
#if TSYNC_ACCURACY_HAVE_ESTIMATE
  for (const auto& n : names.empty() ? library_estimator_names() : names) {
    out.push_back({n, [n](std::span<const probe_sample> probes, std::string& error) -> std::optional<fitted_map> {
                     auto m = tsync::estimate::fit(n, probes, tsync::estimate::fit_options{});
                     if (!m) {
                       error = to_string(m.error());
                       return std::nullopt;
                     }
                     auto shared = std::make_shared<tsync::estimate::model>(std::move(*m));
                     fitted_map f;
                     f.to_host = [shared](std::int64_t g) -> std::optional<std::int64_t> {
                       auto h = shared->to_host(at_ns<guest>(g));
                       return h ? std::optional<std::int64_t>(raw_ns(*h)) : std::nullopt;
                     };
                     f.hard = [shared](std::int64_t g) -> std::optional<host_interval> {
                       auto b = shared->hard_bounds(at_ns<guest>(g));
                       return b ? std::optional<host_interval>(host_interval{raw_ns(b->lo), raw_ns(b->hi)})
                                : std::nullopt;
                     };
                     f.stat = [shared](std::int64_t g) -> std::optional<host_interval> {
                       auto b = shared->stat_bounds(at_ns<guest>(g));
                       return b ? std::optional<host_interval>(host_interval{raw_ns(b->lo), raw_ns(b->hi)})
                                : std::nullopt;
                     };
                     f.segments = shared->segments.size();
                     for (std::size_t i = 1; i < shared->segments.size(); ++i)
                       f.boundaries.push_back(shared->segments[i].begin);
                     return f;
                   }});
  }
#else
  (void)names;
#endif
  return out;
}

}  // namespace tsync::accuracy
