// Every estimator on probes recorded over real links (loopback TCP and Unix
// sockets, two network namespaces through a user-space delaying relay, with
// and without a competing bulk flow). Both sides read the same clock, so the
// true offset is 0 at every time. See fixtures/README.md.
#include "synth.hpp"  // first: enables the Eigen estimators when available

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tsync/estimate.hpp"
#include "tsync/io/probes_csv.hpp"

using namespace tsync;
using namespace tsync::estimate;

namespace {

std::vector<probe_sample> load(const std::string& name) {
  std::ifstream in(std::string(TSYNC_TEST_BINARY_DIR) + "/estimate_fixtures/" + name + ".csv");
  REQUIRE(in);
  auto p = io::read_probes_csv(in);
  REQUIRE(p);
  return *p;
}

struct link_score {
  double mean = 0, sd = 0, max = 0, width = 0;  // ns; width: median hard-interval width
  std::size_t misses = 0;                       // hard intervals that exclude the truth (0)
  std::size_t outside = 0;                      // point estimates outside their own hard interval
  std::size_t segments = 0;
};

// Score a model at every probe's guest time (truth: host = guest).
link_score score(const model& m, const std::vector<probe_sample>& probes) {
  link_score s;
  std::vector<double> widths;
  double sum = 0, ss = 0;
  for (const auto& p : probes) {
    auto h = m.to_host(tsync::at_ns<tsync::guest>(p.g));
    auto hb = m.hard_bounds(tsync::at_ns<tsync::guest>(p.g));
    REQUIRE(h);
    REQUIRE(hb);
    const double e = static_cast<double>(tsync::raw_ns(*h) - p.g);
    sum += e;
    ss += e * e;
    s.max = std::max(s.max, std::fabs(e));
    if (!hb->contains(tsync::at_ns<tsync::host>(p.g))) ++s.misses;  // the truth: host = guest
    if (!hb->contains(*h)) ++s.outside;
    widths.push_back(static_cast<double>(hb->width().count()));
  }
  const double n = static_cast<double>(probes.size());
  s.mean = sum / n;
  s.sd = std::sqrt(std::max(0.0, ss / n - s.mean * s.mean));
  std::nth_element(widths.begin(), widths.begin() + static_cast<std::ptrdiff_t>(widths.size() / 2), widths.end());
  s.width = widths[widths.size() / 2];
  s.segments = m.segments.size();
  return s;
}

const char* const fixtures[] = {"tcp_loopback", "unix_loopback", "netns_jitter", "netns_bulk"};

// Largest |error| (ns) on each fixture: the whole-trace fits, and the
// per-burst baselines (whose bursts of 100 probes see the relay's jitter).
double whole_trace_limit(const std::string& f) {
  if (f == "tcp_loopback" || f == "unix_loopback") return 5'000;
  return 100'000;
}
double per_burst_limit(const std::string& f) {
  if (f == "tcp_loopback" || f == "unix_loopback") return 10'000;
  return 3'000'000;
}

}  // namespace

TEST_CASE("every estimator's hard intervals contain the truth on real links and hold the estimate") {
  for (const char* f : fixtures) {
    const auto probes = load(f);
    for (auto name : names()) {
      for (bool filter : {true, false}) {
        fit_options o;
        o.filter_outliers = filter;
        CAPTURE(f, std::string(name), filter);
        auto m = fit(name, probes, o);
        REQUIRE(m);
        const auto s = score(*m, probes);
        CHECK(s.misses == 0);
        CHECK(s.outside == 0);
      }
    }
  }
}

TEST_CASE("the whole-trace estimators stay within their real-link error bound without inventing drift or steps") {
  for (const char* f : fixtures) {
    const auto probes = load(f);
    for (auto name : names()) {
      CAPTURE(f, std::string(name));
      auto m = fit(name, probes);
      REQUIRE(m);
      const auto s = score(*m, probes);
      CHECK(s.max <= per_burst_limit(f));
      if (name == "convex_hull" || name == "segmented" || name == "regression" || name == "kalman") {
        CHECK(s.max <= whole_trace_limit(f));
      }
      if (name == "segmented") CHECK(m->segments.size() == 1);  // a steady trace is not split
      if (name == "regression") {
        // The slope's statistical interval contains the true drift, 0.
        const auto& seg = m->segments.front();
        REQUIRE(seg.stat);
        const double rho = q48_to_slope(seg.fit.slope_q48);
        CHECK(std::fabs(rho) <= seg.stat->k * std::sqrt(seg.stat->var_slope));
      }
    }
  }
}

// Not run by ctest (hidden tag): prints the table of docs/accuracy.md.
TEST_CASE("print the real-link table", "[.table]") {
  std::printf("| fixture | estimator | mean (ns) | sd (ns) | max abs (ns) | median hard width (ns) | misses | segments |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (const char* f : fixtures) {
    const auto probes = load(f);
    for (auto name : names()) {
      auto m = fit(name, probes);
      if (!m) {
        std::printf("| %s | %s | error: %s | | | | | |\n", f, std::string(name).c_str(),
                    std::string(make_error_code(m.error()).message()).c_str());
        continue;
      }
      const auto s = score(*m, probes);
      std::printf("| %s | %s | %.0f | %.0f | %.0f | %.0f | %zu | %zu |\n", f, std::string(name).c_str(), s.mean,
                  s.sd, s.max, s.width, s.misses, s.segments);
    }
  }
}
