// `tsync correct --tsc-writes`: an ambiguous event lists a bounded number of
// candidate host times, so the output grows with the events, not with
// records x events (issue 13 item 16: 459 KB in, 124 MB out).
#include <catch2/catch.hpp>

#ifdef TSYNC_CLI_PATH
#include <cstdint>
#include <string>

#include "cli_util.hpp"

TEST_CASE("tsync correct --tsc-writes output stays linear in the events with thousands of records") {
  // 2,000 writes, 4 host ticks apart, each setting the guest TSC to 0: an
  // increasing guest stream fits every period.
  std::string trace;
  std::int64_t prev = -90;
  for (int k = 0; k < 2000; ++k) {
    const std::int64_t host = 100 + 4 * k;
    trace += "  CPU 0/KVM-1 [000] " + std::to_string(host) + ": kvm_write_tsc_offset: vcpu=0 prev=" +
             std::to_string(static_cast<std::uint64_t>(prev)) +
             " next=" + std::to_string(static_cast<std::uint64_t>(-host)) + "\n";
    prev = -host;
  }
  const auto path = tsync_cli_test::write_tmp("tsc_writes_bound", "many.txt", trace);
  std::string stream;
  for (int i = 1; i <= 300; ++i) stream += std::to_string(i) + "\n";
  const auto r = tsync_cli_test::tsync_with_input("tsc_writes_bound", "correct --tsc-writes '" + path + "' --vcpu 0",
                                                  stream);
  CHECK(r.status == 3);
  INFO(r.out.substr(0, 400));
  // At most four host times per line (the old output listed ~2,000 per event: ~4 MB).
  CHECK(r.out.size() < 300 * 120);
  CHECK(r.out.rfind("ambiguous: ", 0) == 0);
  CHECK(r.out.find(" ... ") != std::string::npos);
  CHECK(r.out.find(" candidates)\n") != std::string::npos);
}
#endif
