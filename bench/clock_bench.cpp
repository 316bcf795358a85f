// TSC <-> ns over 1 Mi values (8 MiB in, 8 MiB out): tsync's batch
// conversions against perf's formulas written as perf documents them, and a
// memcpy of the same bytes (the baseline).
//
// perf's formulas (include/uapi/linux/perf_event.h for cycles -> ns, perf's
// tsc.c for the inverse), from their documented form:
//   cycles -> ns: quot = cyc >> shift; rem = cyc & ((1 << shift) - 1);
//                 ns = zero + quot * mult + ((rem * mult) >> shift)
//   ns -> cycles: t = ns - zero; quot = t / mult; rem = t % mult;
//                 cyc = (quot << shift) + ((rem << shift) / mult)
// (perf's inverse is the floor, one cycle below tsync's exact ceiling in most
// cases; the work per value is the point of the comparison.)
//
// Targets (issue 11, distro preset): batch tsc_to_ns <= 1.5x memcpy and at
// least as fast as perf's formula; batch ns_to_tsc_ceil <= 2x memcpy.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "tsync/kvm.hpp"

namespace {

using namespace tsync;
using namespace tsync::kvm;

constexpr std::size_t n_values = std::size_t{1} << 20;

// A 2,999,999 kHz TSC (T16: mult 715828121, shift 31), time_zero of a host
// booted 108 days ago.
const perf_time_params params{static_cast<std::uint64_t>(-9317032592159947LL), 715828121u, 31};

std::vector<std::uint64_t> cycles() {
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> v(n_values);
  const std::uint64_t c0 = 27950965013436847ULL;
  for (auto& x : v) x = c0 + rng() % 123456789012ULL;
  return v;
}
std::vector<std::uint64_t> nanoseconds() {
  auto v = cycles();
  for (auto& x : v) x = tsc_to_ns(x, params);
  return v;
}

void set_counters(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n_values * sizeof(std::uint64_t)));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n_values));
}

void BM_memcpy_reference(benchmark::State& state) {
  const auto in = cycles();
  std::vector<std::uint64_t> out(n_values);
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), n_values * sizeof(std::uint64_t));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}

// perf's cycles -> ns, per value, in its quotient/remainder form.
std::uint64_t perf_tsc_to_perf_time(std::uint64_t cyc, const perf_time_params& p) {
  const std::uint64_t quot = cyc >> p.time_shift;
  const std::uint64_t rem = cyc & ((std::uint64_t{1} << p.time_shift) - 1);
  return p.time_zero + quot * p.time_mult + ((rem * p.time_mult) >> p.time_shift);
}
// perf's ns -> cycles (floor), per value.
std::uint64_t perf_perf_time_to_tsc(std::uint64_t ns, const perf_time_params& p) {
  const std::uint64_t t = ns - p.time_zero;
  const std::uint64_t quot = t / p.time_mult;
  const std::uint64_t rem = t % p.time_mult;
  return (quot << p.time_shift) + ((rem << p.time_shift) / p.time_mult);
}

void BM_perf_tsc_to_perf_time(benchmark::State& state) {
  const auto in = cycles();
  std::vector<std::uint64_t> out(n_values);
  const perf_time_params p = params;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n_values; ++i) out[i] = perf_tsc_to_perf_time(in[i], p);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}

void BM_perf_perf_time_to_tsc(benchmark::State& state) {
  const auto in = nanoseconds();
  std::vector<std::uint64_t> out(n_values);
  const perf_time_params p = params;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n_values; ++i) out[i] = perf_perf_time_to_tsc(in[i], p);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}

// tsync's scalar functions in a loop (128-bit product; 128-bit division).
void BM_tsc_to_ns_scalar(benchmark::State& state) {
  const auto in = cycles();
  std::vector<std::uint64_t> out(n_values);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n_values; ++i) out[i] = tsc_to_ns(in[i], params);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}
void BM_ns_to_tsc_ceil_scalar(benchmark::State& state) {
  const auto in = nanoseconds();
  std::vector<std::uint64_t> out(n_values);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n_values; ++i) out[i] = ns_to_tsc_ceil(in[i], params).value_or(0);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}

// The batch conversions (the widest kernel copy the CPU runs).
void BM_tsc_to_ns_batch(benchmark::State& state) {
  const auto in = cycles();
  std::vector<std::uint64_t> out(n_values);
  for (auto _ : state) {
    auto r = tsc_to_ns(in, out, params);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}
void BM_ns_to_tsc_ceil_batch(benchmark::State& state) {
  const auto in = nanoseconds();
  std::vector<std::uint64_t> out(n_values);
  for (auto _ : state) {
    auto r = ns_to_tsc_ceil(in, out, params);
    if (!r) {
      state.SkipWithError("overflow");
      return;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}

// One kernel copy of the batch tsc_to_ns (skipped when the CPU lacks it).
void BM_tsc_to_ns_copy(benchmark::State& state, tsync::detail::isa which) {
  if (!tsync::detail::isa_usable(which)) {
    state.SkipWithError("the CPU does not run this copy");
    return;
  }
  const auto in = cycles();
  std::vector<std::uint64_t> out(n_values);
  for (auto _ : state) {
    kvm::detail::tsc_to_ns_batch(in.data(), out.data(), n_values, params, which);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}

}  // namespace

BENCHMARK(BM_memcpy_reference)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_perf_tsc_to_perf_time)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_tsc_to_ns_batch)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_tsc_to_ns_copy, avx512, tsync::detail::isa::avx512)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_tsc_to_ns_copy, avx2, tsync::detail::isa::avx2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_tsc_to_ns_copy, baseline, tsync::detail::isa::baseline)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_tsc_to_ns_scalar)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_perf_perf_time_to_tsc)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ns_to_tsc_ceil_batch)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ns_to_tsc_ceil_scalar)->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
