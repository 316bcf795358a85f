// Correction engine speed: per-event binary search (the reference), streaming
// cursor and batch, against a trace-cmd-style baseline and a plain memcpy of
// the same bytes. 16 Mi events per CPU; tables of 2, 64, 4096 and 1 Mi samples.
//
// Run: build/distro/bench/correct_bench   (distro preset: Debian's -O2 flags; the
// batch picks its kernel copy at run time, BM_correct_batch_copy runs each one)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "tsync/correct.hpp"

namespace {

using tsync::sync_sample;
using namespace tsync::correct;

constexpr std::size_t kEvents = std::size_t{16} << 20;  // 16 Mi events, 128 MiB

// ---- trace-cmd's arithmetic, written from its description --------------------
// Written from the description of trace-cmd 3.4's timestamp_host_sync() /
// timestamp_correction_calc() (not from its code): a binary search for the
// bracketing pair of samples on every event, then
//   offset = o0 + ((ts - t0) * (o1 - o0) + delta / 2) / delta     (64-bit signed product)
//   ts     = (ts * scaling) >> fraction                           (64-bit product)
//   result = ts + offset
// The 64-bit products overflow on long traces as trace-cmd's do; here they are
// done in unsigned arithmetic so that the wrap is defined behaviour. The
// protocol flags are "interpolate"; with one sample the offset is added alone.
struct tc_sample {
  std::int64_t time;
  std::int64_t offset;
  std::uint64_t scaling;
  unsigned fraction;
};

inline std::uint64_t tc_calc(std::uint64_t ts, const tc_sample& lo, const tc_sample& hi) {
  const std::int64_t delta = hi.time - lo.time;
  const std::uint64_t prod = (ts - static_cast<std::uint64_t>(lo.time)) *
                             (static_cast<std::uint64_t>(hi.offset) - static_cast<std::uint64_t>(lo.offset));
  const std::int64_t num = static_cast<std::int64_t>(prod + static_cast<std::uint64_t>(delta / 2));
  const std::int64_t tscor = static_cast<std::int64_t>(static_cast<std::uint64_t>(lo.offset) +
                                                       static_cast<std::uint64_t>(num / delta));
  ts = (ts * lo.scaling) >> lo.fraction;
  return ts + static_cast<std::uint64_t>(tscor);
}

inline std::uint64_t tc_correct(std::uint64_t ts, const std::vector<tc_sample>& s) {
  const int n = static_cast<int>(s.size());
  if (n == 1) return ts + static_cast<std::uint64_t>(s[0].offset);
  if (n == 2) return tc_calc(ts, s[0], s[1]);
  const std::int64_t t = static_cast<std::int64_t>(ts);
  if (t <= s[0].time) return tc_calc(ts, s[0], s[1]);
  if (t >= s[static_cast<std::size_t>(n - 1)].time)
    return tc_calc(ts, s[static_cast<std::size_t>(n - 2)], s[static_cast<std::size_t>(n - 1)]);
  int lo = 0;
  int hi = n - 1;
  int mid = (lo + hi) / 2;
  while (lo <= hi) {
    const std::int64_t mt = s[static_cast<std::size_t>(mid)].time;
    if (t < mt) hi = mid - 1;
    else if (t > mt) lo = mid + 1;
    else break;
    mid = (lo + hi) / 2;
  }
  return tc_calc(ts, s[static_cast<std::size_t>(mid)], s[static_cast<std::size_t>(mid + 1)]);
}

// ---- shared data -----------------------------------------------------------------
struct fixture {
  std::vector<std::int64_t> events;  // one CPU's stream, in time order
  std::vector<std::int64_t> out;
  std::map<std::int64_t, std::vector<sync_sample>> samples;
  std::map<std::int64_t, std::unique_ptr<sync_table>> tables;
  std::map<std::int64_t, std::vector<tc_sample>> tc;

  fixture() : events(kEvents), out(kEvents, 0) {
    std::mt19937_64 g(42);
    for (std::size_t i = 0; i < kEvents; ++i)
      events[i] = 1'000'000'000 + static_cast<std::int64_t>(i) * 1000 + static_cast<std::int64_t>(g() % 1000);
  }
  const sync_table& table(std::int64_t n) {
    auto& t = tables[n];
    if (!t) {
      // samples evenly over the stream (all events inside), offset drifting at up to ±100 ppm
      std::mt19937_64 g(static_cast<std::uint64_t>(n));
      const std::int64_t first = events.front() - 500;
      const std::int64_t last = events.back() + 500;
      const std::int64_t step = (last - first) / (n - 1);
      std::vector<sync_sample> s;
      std::int64_t off = 1'234'567'890'123;
      for (std::int64_t i = 0; i < n; ++i) {
        s.push_back(sync_sample{tsync::at_ns<tsync::guest>(first + i * step), tsync::guest_to_host(off), 1, 0, std::nullopt});
        off += static_cast<std::int64_t>(g() % static_cast<std::uint64_t>(step / 5000 + 1)) - step / 10000 +
               static_cast<std::int64_t>(g() % 21) - 10;
      }
      samples[n] = s;
      std::vector<tc_sample> c;
      for (const auto& x : s) c.push_back({tsync::raw_ns(x.guest_time), x.offset.count(), 1, 0});
      tc[n] = c;
      t = std::make_unique<sync_table>(*sync_table::make(s, correction_mode::interpolate, outside_policy::clamp));
    }
    return *t;
  }
};

fixture& fx() {
  static fixture f;
  return f;
}

void finish(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(kEvents));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(kEvents) * 8);
}

void BM_correct_tracecmd_baseline(benchmark::State& state) {
  auto& f = fx();
  f.table(state.range(0));
  const auto& s = f.tc[state.range(0)];
  const std::int64_t* in = f.events.data();
  std::int64_t* out = f.out.data();
  for (auto _ : state) {
    for (std::size_t i = 0; i < kEvents; ++i)
      out[i] = static_cast<std::int64_t>(tc_correct(static_cast<std::uint64_t>(in[i]), s));
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  finish(state);
}

// The search and cursor loops are written out on purpose: folding them into one
// template with a corrector argument made g++ 12 keep the stream pointers on the
// stack in the cursor's loop (measured), which would slow down what is measured.
void BM_correct_search(benchmark::State& state) {
  auto& f = fx();
  const auto& t = f.table(state.range(0));
  std::size_t errors = 0;
  const std::int64_t* in = f.events.data();
  std::int64_t* out = f.out.data();
  for (auto _ : state) {
    for (std::size_t i = 0; i < kEvents; ++i) {
      const auto r = t.correct(tsync::at_ns<tsync::guest>(in[i]));
      errors += r ? 0u : 1u;
      out[i] = r ? tsync::raw_ns(*r) : 0;
    }
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["errors"] = static_cast<double>(errors);
  finish(state);
}

void BM_correct_cursor(benchmark::State& state) {
  auto& f = fx();
  const auto& t = f.table(state.range(0));
  std::size_t errors = 0;
  const std::int64_t* in = f.events.data();
  std::int64_t* out = f.out.data();
  for (auto _ : state) {
    cursor c(t);
    for (std::size_t i = 0; i < kEvents; ++i) {
      const auto r = c.correct(in[i]);
      errors += r ? 0u : 1u;
      out[i] = r ? *r : 0;
    }
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["errors"] = static_cast<double>(errors);
  finish(state);
}

void BM_correct_batch(benchmark::State& state) {
  auto& f = fx();
  const auto& t = f.table(state.range(0));
  std::size_t errors = 0;
  for (auto _ : state) {
    const auto st = correct_batch(t, std::span<const std::int64_t>(f.events), std::span<std::int64_t>(f.out));
    errors += st.has_value() ? 0u : 1u;
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  // spot check against the reference (outside the timed loop)
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < kEvents; i += 4099) mismatches += (tsync::raw_ns(*t.correct(tsync::at_ns<tsync::guest>(f.events[i]))) == f.out[i]) ? 0u : 1u;
  state.counters["errors"] = static_cast<double>(errors);
  state.counters["mismatches"] = static_cast<double>(mismatches);
  finish(state);
}

// One block-kernel copy (range(1): 0 baseline, 1 AVX2, 2 AVX-512), skipped when the CPU lacks it.
void BM_correct_batch_copy(benchmark::State& state) {
  const auto which = static_cast<tsync::detail::isa>(state.range(1));
  if (!tsync::detail::isa_usable(which)) {
    state.SkipWithError("the CPU does not run this copy");
    return;
  }
  auto& f = fx();
  const auto& t = f.table(state.range(0));
  std::size_t errors = 0;
  for (auto _ : state) {
    const auto st = tsync::correct::detail::run_batch<false>(t, f.events.data(), f.out.data(), kEvents, which);
    errors += st.has_value() ? 0u : 1u;
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["errors"] = static_cast<double>(errors);
  finish(state);
}

void BM_memcpy_reference(benchmark::State& state) {
  auto& f = fx();
  for (auto _ : state) {
    std::memcpy(f.out.data(), f.events.data(), kEvents * sizeof(std::int64_t));
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  finish(state);
}

void table_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {2, 64, 4096, 1 << 20}) b->Arg(n);
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_correct_tracecmd_baseline)->Apply(table_sizes)->Iterations(2);
BENCHMARK(BM_correct_search)->Apply(table_sizes)->Iterations(2);
BENCHMARK(BM_correct_cursor)->Apply(table_sizes)->Iterations(6);
BENCHMARK(BM_correct_batch)->Apply(table_sizes)->Iterations(6);
BENCHMARK(BM_correct_batch_copy)
    ->ArgsProduct({{2, 4096}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(6);
BENCHMARK(BM_memcpy_reference)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);

}  // namespace

BENCHMARK_MAIN();
