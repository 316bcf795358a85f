// Whole-trace fits at scale (issue 11 item 4): segmented and regression on
// 100 k, 1 M and 10 M probes (339 per burst, like trace-cmd's series), on a
// steady clock (feasible) and with a clock step mid-trace (no single line
// fits). Baseline beside them: a copy of the probes (BM_memcpy_reference).
// Peak memory is reported as the counter `rss_bytes_per_probe` (the growth
// of the maximum resident set over the run, per probe; coarse: it only grows).

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "tsync/estimate.hpp"
#if defined(TSYNC_HAVE_EIGEN)
#include "tsync/estimate/regression_eigen.hpp"
#endif

namespace {

std::vector<tsync::probe_sample> make_probes(std::int64_t n, bool step) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> q(1.0 / 2e3);
  std::vector<tsync::probe_sample> v;
  v.reserve(static_cast<std::size_t>(n));
  double h = 1e9;
  const double rho = 3e-6;
  const std::int64_t per = 339;
  for (std::int64_t i = 0; i < n; ++i) {
    if (i % per == 0 && i > 0) h += 1e8;  // 10 series per second
    const double t1 = std::floor(h);
    const double arrive = t1 + 10e3 + q(rng);
    double g = arrive * (1 - rho) - 5e8;
    if (step && i >= n / 2 / per * per) g += 200e3;  // between two bursts
    const double t2 = std::ceil(arrive + 10e3 + q(rng));
    v.push_back({static_cast<std::int64_t>(t1), static_cast<std::int64_t>(std::floor(g)), static_cast<std::int64_t>(t2),
                 static_cast<std::uint64_t>(i % per), static_cast<std::uint32_t>(i / per), 0});
    h = t2 + 2e3;
  }
  return v;
}

long max_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss * 1024L;
}

void run_fit(benchmark::State& st, std::string_view name, bool step) {
  const auto n = st.range(0);
  const auto v = make_probes(n, step);
#if defined(TSYNC_HAVE_EIGEN)
  (void)tsync::estimate::register_regression(tsync::estimate::default_registry());
#endif
  const long before = max_rss_bytes();
  std::size_t segs = 0;
  bool ok = true;
  for (auto _ : st) {
    auto m = tsync::estimate::fit(name, v);
    ok = m.has_value();
    segs = ok ? m->segments.size() : 0;
    benchmark::DoNotOptimize(m);
  }
  st.counters["segments"] = static_cast<double>(segs);
  st.counters["feasible"] = ok ? 1 : 0;
  st.counters["rss_bytes_per_probe"] = static_cast<double>(max_rss_bytes() - before) / static_cast<double>(n);
  st.SetItemsProcessed(st.iterations() * n);
}

void BM_estimate_fit_segmented(benchmark::State& st) { run_fit(st, "segmented", false); }
void BM_estimate_fit_segmented_step(benchmark::State& st) { run_fit(st, "segmented", true); }
#if defined(TSYNC_HAVE_EIGEN)
void BM_estimate_fit_regression(benchmark::State& st) { run_fit(st, "regression", false); }
void BM_estimate_fit_regression_step(benchmark::State& st) { run_fit(st, "regression", true); }
BENCHMARK(BM_estimate_fit_regression)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_estimate_fit_regression_step)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
#endif

void BM_memcpy_reference(benchmark::State& st) {
  const auto v = make_probes(st.range(0), false);
  std::vector<tsync::probe_sample> w(v.size());
  for (auto _ : st) {
    std::memcpy(w.data(), v.data(), v.size() * sizeof(tsync::probe_sample));
    benchmark::DoNotOptimize(w.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * st.range(0));
}

}  // namespace

BENCHMARK(BM_estimate_fit_segmented)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_estimate_fit_segmented_step)->Arg(100'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_memcpy_reference)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
