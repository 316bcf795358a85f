// `tsync tracecmd show` / `tsync tracecmd table` end to end: a small trace.dat
// built here, its table fed to `tsync correct`, and the named errors.
// Runs the built tool; the path comes from TSYNC_CLI_PATH.
#include <catch2/catch.hpp>

#ifdef TSYNC_CLI_PATH
#include "cli_util.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tsync/interop.hpp"

namespace {

using namespace tsync::interop;
using bytes = std::vector<std::byte>;

using tsync_cli_test::run_result;

std::string tmp_path(const std::string& name) { return tsync_cli_test::tmp_path("tracecmd_cli", name); }

run_result run(const std::string& args) { return tsync_cli_test::run_tool(args); }

std::string write_file(const std::string& name, const bytes& b) {
  const std::string path = tmp_path(name);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return path;
}

void put(bytes& b, std::uint64_t v, std::size_t w) {  // little-endian
  for (std::size_t i = 0; i < w; ++i) b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFFu));
}
void put_str(bytes& b, const std::string& s, bool nul = true) {
  for (char c : s) b.push_back(static_cast<std::byte>(c));
  if (nul) b.push_back(std::byte{0});
}

// A minimal little-endian v7 trace.dat whose one options section holds `options`.
bytes make_v7(const bytes& options) {
  bytes b = {std::byte{0x17}, std::byte{0x08}, std::byte{0x44}};
  put_str(b, "tracing", false);
  put_str(b, "7");
  b.push_back(std::byte{0});  // little-endian
  b.push_back(std::byte{8});  // long size
  put(b, 4096, 4);
  put_str(b, "none");
  put_str(b, "");
  put(b, b.size() + 8, 8);  // the options section follows
  put(b, 0, 2);
  put(b, 0, 2);
  put(b, 0, 4);
  put(b, options.size(), 8);
  b.insert(b.end(), options.begin(), options.end());
  return b;
}

// A KVM-style option: step mode, CPU 0 with an offset change, CPU 1 scaled.
time_shift kvm_option() {
  time_shift ts;
  ts.peer_trace_id = 0xabc;
  ts.cpus = {{{1000, -500, 1, 0}, {5000, -300, 1, 0}}, {{0, 0, std::uint64_t{1} << 47, 48}}};
  return ts;
}

std::string kvm_file() {
  bytes opts;
  append_option(opts, option_time_shift, *encode_time_shift(kvm_option(), byte_order::little), byte_order::little);
  append_option(opts, option_tsc2nsec, *encode_tsc2nsec(tsc2nsec{715828121, 31, 0}, byte_order::little),
                byte_order::little);
  append_options_end(opts, byte_order::little, option_framing::v7);
  return write_file("kvm.dat", make_v7(opts));
}

}  // namespace

TEST_CASE("tsync tracecmd show prints the options of a trace.dat") {
  const auto r = run("tracecmd show '" + kvm_file() + "'");
  CHECK(r.status == 0);
  CHECK(r.out.find("trace.dat version 7, little-endian") != std::string::npos);
  CHECK(r.out.find("cpus=2") != std::string::npos);
  CHECK(r.out.find("time=5000 offset=-300 scaling=1 fraction=0") != std::string::npos);
  CHECK(r.out.find("TSC2NSEC mult=715828121 shift=31 offset=0") != std::string::npos);
  CHECK(r.out.find("correction: step") != std::string::npos);
}

TEST_CASE("tsync tracecmd table writes a table that tsync correct reads") {
  const auto file = kvm_file();
  const auto t0 = run("tracecmd table --cpu 0 '" + file + "'");
  REQUIRE(t0.status == 0);
  CHECK(t0.out ==
        "# trace-cmd TIME_SHIFT; use: tsync correct --mode step\n"
        "time,offset,ratio,frac_bits\n1000,-500,1,0\n5000,-300,1,0\n");
  const std::string table0 = tmp_path("t0.csv");
  { std::ofstream(table0) << t0.out; }
  const std::string in = tmp_path("in.txt");
  { std::ofstream(in) << "2000\n6000\n"; }
  const auto c0 = run("correct --table '" + table0 + "' --mode step < '" + in + "'");
  CHECK(c0.status == 0);
  CHECK(c0.out == "1500\n5700\n");
  // CPU 1 is scaled with one sample: tsync applies the ratio (trace-cmd would not, B3).
  const auto t1 = run("tracecmd table --cpu 1 '" + file + "'");
  REQUIRE(t1.status == 0);
  const std::string table1 = tmp_path("t1.csv");
  { std::ofstream(table1) << t1.out; }
  const auto c1 = run("correct --table '" + table1 + "' --mode step < '" + in + "'");
  CHECK(c1.status == 0);
  CHECK(c1.out == "4000\n12000\n");
}

TEST_CASE("tsync tracecmd table names a missing CPU and a broken option") {
  const auto m = run("tracecmd table --cpu 2 '" + kvm_file() + "'");
  CHECK(m.status == 1);
  CHECK(m.out.find("B5") != std::string::npos);
  // A raw payload in trace-cmd bug B7's layout: counts 2 and 3 both written as 3.
  bytes b7;
  put(b7, 1, 8);
  put(b7, 0, 4);
  put(b7, 2, 4);
  put(b7, 3, 4);
  for (std::uint64_t v : {10u, 20u, 100u, 100u, 1u, 1u}) put(b7, v, 8);
  put(b7, 3, 4);
  for (std::uint64_t v : {10u, 20u, 30u, 200u, 200u, 200u, 1u, 1u, 1u}) put(b7, v, 8);
  for (int i = 0; i < 6; ++i) put(b7, 0, 8);
  const auto r = run("tracecmd show --payload '" + write_file("b7.bin", b7) + "'");
  CHECK(r.status == 0);  // recovered, with a warning naming the bug and the counts
  CHECK(r.out.find("warning") != std::string::npos);
  CHECK(r.out.find("B7") != std::string::npos);
  CHECK(r.out.find("2, 3") != std::string::npos);
  const auto t = run("tracecmd table --cpu 0 --payload '" + write_file("b7.bin", b7) + "'");
  CHECK(t.status == 0);
  CHECK(t.out.find("20,100") != std::string::npos);
  const auto bad = run("tracecmd show '" + write_file("bad.dat", bytes(40)) + "'");
  CHECK(bad.status == 1);
  CHECK(bad.out.find("not a trace.dat file") != std::string::npos);
  const auto usage = run("tracecmd table '" + kvm_file() + "'");
  CHECK(usage.status == 2);
}

// Files written by trace-cmd itself (Debian's trace-cmd package; `trace-cmd
// restore -c` writes the headers of a v7 trace.dat from tracefs, and `trace-cmd
// convert` turns it into v6). Skipped, with a warning, when trace-cmd is not
// installed or tracefs is not readable.
TEST_CASE("tsync tracecmd show reads trace.dat files written by trace-cmd") {
  const std::string v7 = tmp_path("real7.dat");
  const std::string v6 = tmp_path("real6.dat");
  const int have = std::system(("command -v trace-cmd >/dev/null 2>&1 && trace-cmd restore -c -o '" + v7 +
                                "' >/dev/null 2>&1 && test -s '" + v7 + "'")
                                   .c_str());
  if (have != 0) {
    WARN("trace-cmd or tracefs not available: real trace.dat files not checked");
    return;
  }
  // trace-cmd's own count of options includes the DONE entry
  const auto dump = tsync_cli_test::shell("trace-cmd dump --options '" + v7 + "' 2>/dev/null | grep -c '\\[Option '");
  const int theirs = std::atoi(dump.out.c_str());
  REQUIRE(theirs > 0);
  const auto r7 = run("tracecmd show '" + v7 + "'");
  CHECK(r7.status == 0);
  INFO(r7.out);
  CHECK(r7.out.find("trace.dat version 7, little-endian") != std::string::npos);
  CHECK(r7.out.find(std::to_string(theirs - 1) + " option(s)") != std::string::npos);
  CHECK(r7.out.find("no TIME_SHIFT option") != std::string::npos);
  const auto table = run("tracecmd table --cpu 0 '" + v7 + "'");
  CHECK(table.status != 0);  // no TIME_SHIFT: an error, not an empty table
  if (std::system(("trace-cmd convert --file-version 6 -i '" + v7 + "' -o '" + v6 + "' >/dev/null 2>&1").c_str()) == 0) {
    const auto r6 = run("tracecmd show '" + v6 + "'");
    CHECK(r6.status == 0);
    CHECK(r6.out.find("trace.dat version 6, little-endian") != std::string::npos);
  }
}

#endif
