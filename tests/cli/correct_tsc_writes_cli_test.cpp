// `tsync correct --tsc-writes FILE --vcpu N` end to end: host traces with
// kvm_write_tsc_offset records, guest streams across a TSC write, ambiguous
// events, malformed records, usage errors. Runs the built tool; the path comes
// from TSYNC_CLI_PATH.
#include <catch2/catch.hpp>

#ifdef TSYNC_CLI_PATH
#include "cli_util.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tsync/kvm/tsc.hpp"

namespace {

using tsync_cli_test::run_result;

std::string tmp_path(const std::string& name) { return tsync_cli_test::tmp_path("correct_tsc_writes_cli", name); }

std::string write_file(const std::string& name, const std::string& text) {
  return tsync_cli_test::write_tmp("correct_tsc_writes_cli", name, text);
}

run_result run(const std::string& args, const std::string& input) {
  return tsync_cli_test::tsync_with_input("correct_tsc_writes_cli", "correct " + args, input);
}

std::string u(std::int64_t v) { return std::to_string(static_cast<std::uint64_t>(v)); }

// The worked example of docs/correction.md: guest = host - 100 until host
// 1000, where the guest writes its TSC back by 30 (offset -130), as tracefs
// prints it, with another vCPU's record and another event around it.
const std::string tracefs_trace =
    "# tracer: nop\n"
    "#\n"
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
    "       CPU 0/KVM-4001    [002] d..1.          990: kvm_exit: reason MSR_WRITE rip 0x1 info 0 0\n"
    "       CPU 0/KVM-4001    [002] d..1.         1000: kvm_write_tsc_offset: vcpu=0 prev=" +
    u(-100) + " next=" + u(-130) +
    "\n"
    "       CPU 1/KVM-4002    [003] d..1.         1004: kvm_write_tsc_offset: vcpu=1 prev=" +
    u(-100) + " next=" + u(-200) + "\n";

}  // namespace

TEST_CASE("tsync correct --tsc-writes gives the host times of a guest stream across a TSC write") {
  const auto trace = write_file("host.txt", tracefs_trace);
  const auto r = run("--tsc-writes '" + trace + "' --vcpu 0", "880\n890\n899\n# a comment\n871\n875\n900\n");
  CHECK(r.status == 0);
  CHECK(r.out == "980\n990\n999\n1001\n1005\n1030\n");
  // vCPU 1's own records apply to its stream (offset -100, then -200 from host 1004)
  const auto v1 = run("--tsc-writes '" + trace + "' --vcpu 1", "880\n890\n850\n");
  CHECK(v1.status == 0);
  CHECK(v1.out == "980\n990\n1050\n");
}

TEST_CASE("tsync correct --tsc-writes reads trace-cmd report output with TSC scaling") {
  // A 3 GHz guest on a 2 GHz host (ratio 1.5 * 2^48); the guest writes its TSC
  // back to 1000 at host 40000000000000.
  const std::uint64_t ratio = std::uint64_t{3} << 47;
  const tsync::kvm::tsc_params unit{0, ratio, 48};
  const std::uint64_t t0 = 39'000'000'000'000ULL, t1 = 40'000'000'000'000ULL;
  const std::uint64_t o0 = 0 - tsync::kvm::to_guest(t0, unit);
  const std::uint64_t o1 = 1000 - tsync::kvm::to_guest(t1, unit);
  const std::string trace = "cpus=4\n       CPU 0/KVM-5120  [001]" + std::to_string(t1) +
                            ": kvm_write_tsc_offset: vcpu=0 prev=" + std::to_string(o0) +
                            " next=" + std::to_string(o1) + "\n";
  const auto path = write_file("report.txt", trace);
  std::vector<std::uint64_t> host{t1 - 3000, t1 - 1000, t1 + 10, t1 + 2000};
  std::string input, expected;
  for (auto h : host) {
    const std::uint64_t g = tsync::kvm::to_guest(h, {h < t1 ? o0 : o1, ratio, 48});
    input += std::to_string(g) + "\n";
    expected += std::to_string(h) + "\n";
  }
  const auto r = run("--tsc-writes '" + path + "' --vcpu 0 --ratio " + std::to_string(ratio) + " --frac-bits 48", input);
  CHECK(r.status == 0);
  CHECK(r.out == expected);
  // without the ratio the same stream maps elsewhere
  const auto unscaled = run("--tsc-writes '" + path + "' --vcpu 0", input);
  CHECK(unscaled.out != expected);
}

TEST_CASE("tsync correct --tsc-writes writes ambiguous events with their candidates and exits with status 3") {
  // The 2012 counter-example: writes at host 100 104 108 each set the guest TSC to 0.
  const std::string trace = "  CPU 0/KVM-1 [000]         100: kvm_write_tsc_offset: vcpu=0 prev=" + u(-90) +
                            " next=" + u(-100) +
                            "\n"
                            "  CPU 0/KVM-1 [000]         104: kvm_write_tsc_offset: vcpu=0 prev=" +
                            u(-100) + " next=" + u(-104) +
                            "\n"
                            "  CPU 0/KVM-1 [000]         108: kvm_write_tsc_offset: vcpu=0 prev=" +
                            u(-104) + " next=" + u(-108) + "\n";
  const auto path = write_file("amb.txt", trace);
  const auto r = run("--tsc-writes '" + path + "' --vcpu 0", "1\n2\n3\n1\n2\n3\n");
  CHECK(r.status == 3);
  // The first three fit the offsets -90 -100 -104 (host 91 / 101 / 105 for
  // the first), the last three -100 -104 -108: each is written with its
  // candidates, in stream order, then the message.
  CHECK(r.out.rfind("ambiguous: 91 101 105\n"
                    "ambiguous: 92 102 106\n"
                    "ambiguous: 93 103 107\n"
                    "ambiguous: 101 105 109\n"
                    "ambiguous: 102 106 110\n"
                    "ambiguous: 103 107 111\n",
                    0) == 0);
  CHECK(r.out.find("6 of 6 events are ambiguous") != std::string::npos);
  // when the guest time goes back three times, once per write, each group has one offset
  const auto d = run("--tsc-writes '" + path + "' --vcpu 0", "1\n2\n1\n2\n1\n2\n1\n2\n");
  CHECK(d.status == 0);
  CHECK(d.out == "91\n92\n101\n102\n105\n106\n109\n110\n");
}

TEST_CASE("tsync correct --tsc-writes --start rules out the period before the vCPU was created") {
  // vCPU 0 is created at host 1000 (prev=0: guest TSC 0 there) and the guest
  // writes its TSC back to 100 at host 2000. Small guest times also fit the
  // offset 0 before the creation record.
  const std::string trace = "  CPU 0/KVM-1 [000]  1000: kvm_write_tsc_offset: vcpu=0 prev=0 next=" + u(-1000) +
                            "\n  CPU 0/KVM-1 [000]  2000: kvm_write_tsc_offset: vcpu=0 prev=" + u(-1000) +
                            " next=" + u(-1900) + "\n";
  const auto path = write_file("boot.txt", trace);
  const std::string stream = "5\n10\n20\n";
  const auto amb = run("--tsc-writes '" + path + "' --vcpu 0", stream);
  CHECK(amb.status == 3);
  CHECK(amb.out.rfind("ambiguous: 5 1005\nambiguous: 10 1010\nambiguous: 20 1020\n", 0) == 0);
  const auto r = run("--tsc-writes '" + path + "' --vcpu 0 --start 1000", stream);
  CHECK(r.status == 0);
  CHECK(r.out == "1005\n1010\n1020\n");
  // the later write still applies: guest 990 at host 1990, then 150 at host 2050
  const auto w = run("--tsc-writes '" + path + "' --vcpu 0 --start 1000", "5\n990\n150\n");
  CHECK(w.status == 0);
  CHECK(w.out == "1005\n1990\n2050\n");
  // a start after every record keeps the last offset
  const auto late = run("--tsc-writes '" + path + "' --vcpu 0 --start 3000", "1100\n1200\n");
  CHECK(late.status == 0);
  CHECK(late.out == "3000\n3100\n");
  CHECK(run("--tsc-writes '" + path + "' --vcpu 0 --start x", stream).status == 2);
  CHECK(run("--table t.csv --start 5", stream).status == 2);
}

TEST_CASE("tsync correct --tsc-writes names the line of a malformed record") {
  const auto bad = write_file("bad.txt", tracefs_trace + "  CPU 0/KVM-1 [000]  2000: kvm_write_tsc_offset: vcpu=0 prev=5x next=1\n");
  const auto r = run("--tsc-writes '" + bad + "' --vcpu 0", "880\n");
  CHECK(r.status == 1);
  CHECK(r.out.find("line 7") != std::string::npos);
  CHECK(r.out.find("'prev' has trailing characters") != std::string::npos);
  CHECK(r.out.find("880") == std::string::npos);  // nothing is written
  const auto ns = write_file("ns.txt", "  CPU 0/KVM-1 [000] d..1. 12.345678: kvm_write_tsc_offset: vcpu=0 prev=1 next=2\n");
  const auto c = run("--tsc-writes '" + ns + "' --vcpu 0", "1\n");
  CHECK(c.status == 1);
  CHECK(c.out.find("line 1") != std::string::npos);
  CHECK(c.out.find("x86-tsc") != std::string::npos);
  // a record of vCPU 0 is missing between two others
  const auto gap = write_file("gap.txt", tracefs_trace + "  CPU 0/KVM-1 [000]  2000: kvm_write_tsc_offset: vcpu=0 prev=" +
                                             u(-140) + " next=" + u(-150) + "\n");
  const auto g = run("--tsc-writes '" + gap + "' --vcpu 0", "1\n");
  CHECK(g.status == 1);
  CHECK(g.out.find("line 7") != std::string::npos);
  CHECK(g.out.find("a record is missing") != std::string::npos);
  // a malformed guest timestamp names its stdin line
  const auto trace = write_file("host2.txt", tracefs_trace);
  const auto in = run("--tsc-writes '" + trace + "' --vcpu 0", "880\n-5\n");
  CHECK(in.status == 1);
  CHECK(in.out.find("line 2") != std::string::npos);
}

TEST_CASE("tsync correct --tsc-writes reports a stream that fits no offsets and a vCPU without records") {
  const auto trace = write_file("host3.txt", tracefs_trace);
  const auto r = run("--tsc-writes '" + trace + "' --vcpu 0", "880\n870\n860\n");
  CHECK(r.status == 1);
  CHECK(r.out.find("fits no sequence") != std::string::npos);
  const auto v = run("--tsc-writes '" + trace + "' --vcpu 5", "880\n");
  CHECK(v.status == 1);
  CHECK(v.out.find("no kvm_write_tsc_offset record of vCPU 5") != std::string::npos);
  const auto missing = run("--tsc-writes '" + tmp_path("does_not_exist.txt") + "' --vcpu 0", "1\n");
  CHECK(missing.status == 1);
  CHECK(missing.out.find("cannot open trace") != std::string::npos);
}

TEST_CASE("tsync correct --tsc-writes rejects options that do not go with it") {
  const auto trace = write_file("host4.txt", tracefs_trace);
  const std::string t = "--tsc-writes '" + trace + "'";
  CHECK(run(t, "1\n").status == 2);                                    // no --vcpu
  CHECK(run(t + " --vcpu x", "1\n").status == 2);                      // not a number
  CHECK(run(t + " --vcpu 0 --ratio 5", "1\n").status == 2);            // ratio without frac-bits
  CHECK(run(t + " --vcpu 0 --ratio 0 --frac-bits 0", "1\n").status == 2);
  CHECK(run(t + " --vcpu 0 --ratio 1 --frac-bits 64", "1\n").status == 2);
  CHECK(run(t + " --vcpu 0 --reverse", "1\n").status == 2);
  CHECK(run(t + " --vcpu 0 --table x.csv", "1\n").status == 2);
  CHECK(run("--vcpu 0 --table x.csv", "1\n").status == 2);  // --vcpu without --tsc-writes
}
#endif
