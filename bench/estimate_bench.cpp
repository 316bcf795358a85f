// Whole-trace fits over 100 k, 1 M and 10 M probes, feasible (one line fits)
// and infeasible (a 1 ms clock step halfway: no line fits and the soft
// rejection runs out of budget), with the peak heap memory per probe of the
// fit (inputs excluded) and a memcpy of the probes' bytes as the baseline.
//
// Targets (issue 11, distro preset): 1 M probes <= 2 s and 10 M probes <= 20 s,
// feasible or not, peak memory <= 100 bytes per probe.
//
// Every whole-trace estimator: convex_hull, segmented and (with Eigen)
// regression. Counters: `bytes_per_probe`, the peak heap of the fit (inputs
// excluded; every operator new of this binary is counted), and
// `rss_bytes_per_probe`, the growth of the process's maximum resident set
// during the run (coarse: it only grows, so run one benchmark per process,
// e.g. with --benchmark_filter, for a clean figure).
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include <sstream>
#include <string>

#include "tsync/estimate.hpp"
#include "tsync/io/probes_csv.hpp"
#if defined(TSYNC_HAVE_EIGEN)
#include "tsync/estimate/regression_eigen.hpp"
#endif

// Heap accounting for the peak-memory counter (this binary only).
namespace {
std::atomic<std::size_t> heap_now{0}, heap_peak{0};
[[gnu::noinline]] void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  const std::size_t now = heap_now += malloc_usable_size(p);
  std::size_t peak = heap_peak.load();
  while (now > peak && !heap_peak.compare_exchange_weak(peak, now)) {
  }
  return p;
}
[[gnu::noinline]] void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  heap_now -= malloc_usable_size(p);
  std::free(p);
}
}  // namespace
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }

namespace {

using namespace tsync;
using namespace tsync::estimate;

// Probes of a guest 1.234 s ahead drifting by +12 ppm: one probe every 10 µs
// of guest time in series of 339 (10 series/s in real traces; denser here so
// that 10 M probes stay within ±2^52 ns), one-way delays 2 µs + exponential
// (mean 1 µs). With `step`, the host clock steps by 1 ms halfway.
std::vector<probe_sample> make_probes(std::size_t n, bool step) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> q(1.0 / 1000.0);
  std::vector<probe_sample> v(n);
  const std::int64_t g0 = 1'000'000'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t g = g0 + static_cast<std::int64_t>(i) * 10'000;
    const double drift = 12e-6 * static_cast<double>(g - g0);
    std::int64_t off = -1'234'000'000 + static_cast<std::int64_t>(drift);
    if (step && i >= n / 2) off += 1'000'000;
    const auto d1 = 2000 + static_cast<std::int64_t>(q(rng));
    const auto d2 = 2000 + static_cast<std::int64_t>(q(rng));
    v[i] = probe_sample{g + off - d1, g, g + off + d2, i % 339, static_cast<std::uint32_t>(i / 339), 0};
  }
  return v;
}

long max_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss * 1024L;
}

void BM_memcpy_reference(benchmark::State& state) {
  const auto in = make_probes(static_cast<std::size_t>(state.range(0)), false);
  std::vector<probe_sample> out(in.size());
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), in.size() * sizeof(probe_sample));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size() * sizeof(probe_sample)));
}

void BM_fit_hull(benchmark::State& state, bool step) {
  const auto probes = make_probes(static_cast<std::size_t>(state.range(0)), step);
  const fit_options opt;
  std::size_t peak = 0;
  for (auto _ : state) {
    const std::size_t before = heap_now.load();
    heap_peak = before;
    auto r = fit_hull(probes, probes[probes.size() / 2].g, opt);
    peak = std::max(peak, heap_peak.load() - before);
    if (static_cast<bool>(r) == step) {
      state.SkipWithError(step ? "expected infeasible" : "expected a fit");
      return;
    }
    benchmark::DoNotOptimize(r);
  }
  state.counters["bytes_per_probe"] = static_cast<double>(peak) / static_cast<double>(probes.size());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * probes.size()));
}

// The registered estimator (screening, bursts, the hull and its reports).
void BM_estimator(benchmark::State& state, const char* name, bool step) {
#if defined(TSYNC_HAVE_EIGEN)
  (void)register_regression(default_registry());
#endif
  const auto probes = make_probes(static_cast<std::size_t>(state.range(0)), step);
  const fit_options opt;
  std::size_t peak = 0;
  std::size_t segments = 0;
  bool ok = false;
  const long rss_before = max_rss_bytes();
  for (auto _ : state) {
    const std::size_t before = heap_now.load();
    heap_peak = before;
    auto r = fit(name, probes, opt);
    peak = std::max(peak, heap_peak.load() - before);
    ok = r.has_value();
    segments = ok ? r->segments.size() : 0;
    benchmark::DoNotOptimize(r);
  }
  state.counters["feasible"] = ok ? 1 : 0;
  state.counters["segments"] = static_cast<double>(segments);
  state.counters["bytes_per_probe"] = static_cast<double>(peak) / static_cast<double>(probes.size());
  state.counters["rss_bytes_per_probe"] =
      static_cast<double>(max_rss_bytes() - rss_before) / static_cast<double>(probes.size());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * probes.size()));
}

// Parsing the probes CSV (tsync/io/probes_csv.hpp) from memory; target >= 50 MB/s.
void BM_read_probes_csv(benchmark::State& state) {
  const auto probes = make_probes(static_cast<std::size_t>(state.range(0)), false);
  std::ostringstream os;
  tsync::io::write_probes_csv(os, probes);
  const std::string text = os.str();
  for (auto _ : state) {
    auto r = tsync::io::read_probes_csv(std::string_view(text));
    if (!r || r->size() != probes.size()) {
      state.SkipWithError("parse failed");
      return;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}

}  // namespace

BENCHMARK(BM_read_probes_csv)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_memcpy_reference)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_fit_hull, feasible, false)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_fit_hull, infeasible, true)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_estimator, convex_hull_feasible, "convex_hull", false)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_estimator, convex_hull_infeasible, "convex_hull", true)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_estimator, segmented_feasible, "segmented", false)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_estimator, segmented_step, "segmented", true)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
#if defined(TSYNC_HAVE_EIGEN)
BENCHMARK_CAPTURE(BM_estimator, regression_feasible, "regression", false)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_estimator, regression_infeasible, "regression", true)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
#endif

BENCHMARK_MAIN();
