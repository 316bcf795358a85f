// The error of trace-cmd's TIME_SHIFT interpolation on long traces: trace-cmd
// 3.1.6 computes o0 + ((ts - t0) * (o1 - o0) + delta/2) / delta with a signed
// 64-bit product, which wraps once |ts - t0| * |o1 - o0| passes 2^63. With its
// default schedule (two samples per CPU, one at each end of the trace) the
// product grows with drift × length². This program prints, for each drift and
// trace length, the share of events trace-cmd places more than 2 ns from the
// exact correction and the largest error (tsync's own correction is exact to
// the nanosecond: it interpolates in 128-bit arithmetic). docs/interop.md
// shows its output.
#include <cstdint>
#include <cstdio>

#include "tsync/io/tracecmd_write.hpp"

int main() {
  struct length {
    const char* name;
    std::int64_t ns;
  };
  const length lengths[] = {{"1 min", 60'000'000'000},
                            {"10 min", 600'000'000'000},
                            {"1 h", 3'600'000'000'000},
                            {"1 day", 86'400'000'000'000}};
  const std::int64_t drifts_ppb[] = {1'000, 10'000, 100'000};
  std::printf("| drift | trace length | events off by > 2 ns | largest error |\n|---|---|---|---|\n");
  for (const auto d : drifts_ppb)
    for (const auto& l : lengths) {
      const auto st = tsync::io::tracecmd_two_sample_error(d, l.ns, 100'001);
      const double pct = 100.0 * static_cast<double>(st.off) / static_cast<double>(st.events);
      const double err = static_cast<double>(st.max_error);
      if (err < 1e3) std::printf("| %lld ppm | %s | %.1f %% | %.0f ns |\n", static_cast<long long>(d / 1000), l.name, pct, err);
      else if (err < 1e6) std::printf("| %lld ppm | %s | %.1f %% | %.1f us |\n", static_cast<long long>(d / 1000), l.name, pct, err / 1e3);
      else if (err < 1e9) std::printf("| %lld ppm | %s | %.1f %% | %.1f ms |\n", static_cast<long long>(d / 1000), l.name, pct, err / 1e6);
      else std::printf("| %lld ppm | %s | %.1f %% | %.2f s |\n", static_cast<long long>(d / 1000), l.name, pct, err / 1e9);
    }
  return 0;
}
