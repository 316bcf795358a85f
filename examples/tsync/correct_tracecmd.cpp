// `tsync correct --rounding tracecmd`: trace-cmd 3.1.6's correction arithmetic
// (io::tracecmd_correct), bit for bit, with the events where its 64-bit
// arithmetic overflows counted and shown on stderr.
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/io/tracecmd_write.hpp"

int run_correct_tracecmd_rounding(const char* cmd, const tsync::correct::sync_table& table, bool wrapped);

int run_correct_tracecmd_rounding(const char* cmd, const tsync::correct::sync_table& table, bool wrapped) {
  const auto samples = tsync::io::to_time_shift_samples(table.samples());
  const bool interpolate = table.options().mode == tsync::correct::correction_mode::interpolate;
  std::uint64_t overflows = 0, zero_deltas = 0;
  std::string out;
  const int rc = tsync::cli::for_each_number_line<std::uint64_t>(std::cin, cmd, [&](std::uint64_t v, std::size_t line) {
    const auto r = tsync::io::tracecmd_correct(v, samples, interpolate);
    if (r.overflow && ++overflows <= 5)
      std::cerr << "tsync " << cmd << ": line " << line << ": guest time " << v
                << ": trace-cmd's 64-bit arithmetic overflows here (trace-cmd gives " << r.wrapped << ", the formula "
                << r.exact << "); writing " << (wrapped ? "trace-cmd's wrapped value (--wrapped)" : "the exact value") << "\n";
    if (r.zero_delta) ++zero_deltas;
    out += std::to_string(r.overflow && !wrapped ? r.exact : r.wrapped);
    out += '\n';
    if (out.size() > 1 << 16) {
      std::cout << out;
      out.clear();
    }
    return 0;
  });
  std::cout << out << std::flush;
  if (overflows > 0)
    std::cerr << "tsync " << cmd << ": trace-cmd's arithmetic overflows on " << overflows << " event(s): "
              << (wrapped ? "trace-cmd's wrapped values were written" : "the exact values were written (--wrapped writes trace-cmd's)")
              << "; tsync's own correction (--rounding floor) has no overflow\n";
  if (zero_deltas > 0)
    std::cerr << "tsync " << cmd << ": " << zero_deltas << " event(s) fall between two samples with the same time"
              << " (trace-cmd divides by zero there); written as time + the first sample's offset\n";
  return rc;
}
