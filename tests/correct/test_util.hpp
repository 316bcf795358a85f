#pragma once
// Shared helpers of the correction tests: a seeded generator (seed printed by
// each test; override with the environment variable TSYNC_SEED) and random
// tables and event streams, including extreme values.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/correct/sync_table.hpp"

namespace tsync_test {

/// A sync sample from raw counts (the tests' tables are written as numbers).
inline tsync::sync_sample raw_sample(std::int64_t t, std::int64_t o, std::uint64_t ratio = 1, std::uint8_t frac = 0,
                                     std::optional<tsync::offset_interval> b = std::nullopt) {
  return tsync::sync_sample{tsync::at_ns<tsync::guest>(t), tsync::guest_to_host(o), ratio, frac, b};
}

/// `t.correct` on raw counts.
inline tsync::expected<std::int64_t, tsync::errc> raw_correct(const tsync::correct::sync_table& t, std::int64_t g) {
  auto h = t.correct(tsync::at_ns<tsync::guest>(g));
  if (!h) return tsync::unexpected(h.error());
  return tsync::raw_ns(*h);
}

/// A sync table whose scalar queries take and return raw counts, for the
/// numeric tests of the correction rules (the library's own entry points are
/// typed; this view unwraps them and nothing else).
struct raw_table : tsync::correct::sync_table {
  raw_table(tsync::correct::sync_table t) : tsync::correct::sync_table(std::move(t)) {}  // NOLINT
  [[nodiscard]] tsync::expected<std::int64_t, tsync::errc> correct(std::int64_t g) const noexcept {
    auto h = sync_table::correct(tsync::at_ns<tsync::guest>(g));
    if (!h) return tsync::unexpected(h.error());
    return tsync::raw_ns(*h);
  }
  [[nodiscard]] tsync::expected<std::int64_t, tsync::errc> offset_at(std::int64_t g) const noexcept {
    auto o = sync_table::offset_at(tsync::at_ns<tsync::guest>(g));
    if (!o) return tsync::unexpected(o.error());
    return o->count();
  }
  [[nodiscard]] std::optional<tsync::offset_interval> bounds_at(std::int64_t g) const noexcept {
    return sync_table::bounds_at(tsync::at_ns<tsync::guest>(g));
  }
  [[nodiscard]] tsync::expected<std::int64_t, tsync::errc> to_guest(std::int64_t h) const noexcept {
    auto g = sync_table::to_guest(tsync::at_ns<tsync::host>(h));
    if (!g) return tsync::unexpected(g.error());
    return tsync::raw_ns(*g);
  }
};

inline std::uint64_t seed_for(std::uint64_t fallback) {
  if (const char* s = std::getenv("TSYNC_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

struct rng {
  std::mt19937_64 g;
  explicit rng(std::uint64_t seed) : g(seed) {}
  std::uint64_t u64() { return g(); }
  std::int64_t i64() { return static_cast<std::int64_t>(g()); }
  /// Uniform in [lo, hi] (inclusive), any int64 bounds.
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    const std::uint64_t v = span == std::numeric_limits<std::uint64_t>::max() ? g() : g() % (span + 1);
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + v);
  }
  bool coin(unsigned one_in) { return g() % one_in == 0; }
};

/// Kinds of random tables.
enum class table_kind { realistic, wide, extreme };

/// Strictly increasing times and offsets for an unscaled table.
inline std::vector<tsync::sync_sample> random_samples(rng& r, std::size_t n, table_kind kind) {
  std::vector<tsync::sync_sample> s(n);
  std::int64_t t = 0;
  std::int64_t o = 0;
  switch (kind) {
    case table_kind::realistic:  // ns clocks, 1 ms .. 10 s between samples, drift up to ±1000 ppm
      t = r.range(-1'000'000'000'000, 1'000'000'000'000);
      o = r.range(-1'000'000'000'000, 1'000'000'000'000);
      for (std::size_t i = 0; i < n; ++i) {
        s[i].guest_time = tsync::at_ns<tsync::guest>(t);
        s[i].offset = tsync::guest_to_host(o);
        const std::int64_t gap = r.range(1000, 10'000'000'000);
        t += gap;
        o += r.range(-gap / 1000, gap / 1000) + r.range(-50, 50);
      }
      break;
    case table_kind::wide:  // arbitrary gaps and offset jumps within ±2^61
      t = r.range(-(std::int64_t{1} << 61), std::int64_t{1} << 60);
      for (std::size_t i = 0; i < n; ++i) {
        s[i].guest_time = tsync::at_ns<tsync::guest>(t);
        s[i].offset = tsync::guest_to_host(r.range(-(std::int64_t{1} << 61), std::int64_t{1} << 61));
        t += r.range(1, std::int64_t{1} << (r.g() % 50));
      }
      break;
    case table_kind::extreme: {  // anything, including times and offsets near the int64 limits
      std::vector<std::int64_t> ts(n);
      for (auto& v : ts) v = r.coin(4) ? r.range(-5, 5) + (r.coin(2) ? std::numeric_limits<std::int64_t>::min() + 5
                                                                        : std::numeric_limits<std::int64_t>::max() - 5)
                                       : r.i64();
      std::sort(ts.begin(), ts.end());
      ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
      s.resize(ts.size());
      for (std::size_t i = 0; i < ts.size(); ++i) {
        s[i].guest_time = tsync::at_ns<tsync::guest>(ts[i]);
        s[i].offset = tsync::guest_to_host(r.coin(3) ? r.i64() : r.range(-1000, 1000));
      }
      break;
    }
  }
  return s;
}

/// A per-CPU-like stream: mostly increasing, with occasional backward and far jumps,
/// covering [lo, hi] and a margin outside.
inline std::vector<std::int64_t> random_stream(rng& r, std::size_t n, std::int64_t lo, std::int64_t hi) {
  std::vector<std::int64_t> v(n);
  const tsync::i128 span = static_cast<tsync::i128>(hi) - lo;
  const tsync::i128 margin = span / 8 + 10;
  const tsync::i128 a128 = std::max<tsync::i128>(static_cast<tsync::i128>(lo) - margin, std::numeric_limits<std::int64_t>::min());
  const tsync::i128 b128 = std::min<tsync::i128>(static_cast<tsync::i128>(hi) + margin, std::numeric_limits<std::int64_t>::max());
  const std::int64_t a = static_cast<std::int64_t>(a128);
  const std::int64_t b = static_cast<std::int64_t>(b128);
  const std::uint64_t step_max = static_cast<std::uint64_t>((b128 - a128) / static_cast<tsync::i128>(n + 1)) * 2 + 1;
  std::int64_t t = a;
  for (std::size_t i = 0; i < n; ++i) {
    if (r.coin(97)) {
      t = r.range(a, b);  // jump anywhere (backward or far forward)
    } else if (r.coin(500)) {
      t = r.i64();  // anything at all
    } else {
      const std::uint64_t d = r.u64() % step_max;
      const tsync::i128 nt = static_cast<tsync::i128>(t) + static_cast<tsync::i128>(d);
      t = nt > b ? a : static_cast<std::int64_t>(nt);
    }
    v[i] = t;
  }
  return v;
}

}  // namespace tsync_test
