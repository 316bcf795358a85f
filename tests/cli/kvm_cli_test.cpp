// `tsync kvm ...` end to end: runs the built tool with popen on golden vectors.
#include <catch2/catch.hpp>

#ifdef TSYNC_CLI_PATH

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace {

namespace fs = std::filesystem;

struct run_result {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string temp_file() {
  std::string tmpl = (fs::temp_directory_path() / "tsync_kvm_cli_XXXXXX").string();
  const int fd = ::mkstemp(tmpl.data());
  REQUIRE(fd >= 0);
  ::close(fd);
  return tmpl;
}

// Run `tsync <args>` with `input` on stdin; stdout and stderr are captured.
run_result run_tsync(const std::string& args, const std::string& input) {
  const std::string tmpl = temp_file();
  const std::string errf = temp_file();
  std::ofstream(tmpl, std::ios::binary) << input;
  const std::string cmd = std::string("'") + TSYNC_CLI_PATH + "' " + args + " < '" + tmpl + "' 2> '" + errf + "'";
  run_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(errf, std::ios::binary);
  r.err.assign(std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>());
  fs::remove(tmpl);
  fs::remove(errf);
  return r;
}

}  // namespace

TEST_CASE("tsync kvm to-guest computes T9 on Intel parameters") {
  auto r = run_tsync("kvm to-guest --offset -18633982886952159 --ratio 187650047023786 --frac-bits 48",
                     "27951088470225859\n");
  CHECK(r.status == 0);
  CHECK(r.out == "82304553443\n");
}

TEST_CASE("tsync kvm to-host computes T10 exactly and T2 unscaled") {
  auto r = run_tsync("kvm to-host --offset -18633982886952159 --ratio 187650047023786 --frac-bits 48",
                     "82304553443\n");
  CHECK(r.status == 0);
  CHECK(r.out == "27951088470225859\n");
  auto u = run_tsync("kvm to-host --offset -27950965013436847", "1234567890123\n\n# comment\n1234567890123\n");
  CHECK(u.status == 0);
  CHECK(u.out == "27952199581326970\n27952199581326970\n");
}

TEST_CASE("tsync kvm to-host prints the T11 AMD bucket with --bucket") {
  auto r = run_tsync("kvm to-host --offset -18633982886274325 --ratio 2863312485 --frac-bits 32 --bucket",
                     "82304553440\n");
  CHECK(r.status == 0);
  CHECK(r.out == "27951088470225858 27951088470225859\n");
}

TEST_CASE("tsync kvm to-guest with --nested reproduces the T14 hardware value") {
  auto r = run_tsync(
      "kvm to-guest --offset -18633982886952159 --ratio 187650047023786 --frac-bits 48 --nested "
      "--offset2 -3600001800000 --ratio2 140737558724107",
      "27961765009836847\n");
  CHECK(r.status == 0);
  CHECK(r.out == "18446744073709551521\n");  // -95 modulo 2^64
}

TEST_CASE("tsync kvm to-host reports a malformed line with its number and fails") {
  auto r = run_tsync("kvm to-host --offset 0", "1\n2\n3x\n4\n");
  CHECK(r.status == 1);
  CHECK(r.out == "1\n2\n");
  CHECK(r.err.find("line 3") != std::string::npos);
}

TEST_CASE("tsync kvm to-host reports an overflowing value with its line number") {
  // Half-speed guest: S = 2^63 needs host 2^64.
  auto r = run_tsync("kvm to-host --offset 0 --ratio 140737488355328 --frac-bits 48", "2\n9223372036854775808\n");
  CHECK(r.status == 1);
  CHECK(r.out == "4\n");
  CHECK(r.err.find("line 2") != std::string::npos);
}

TEST_CASE("tsync kvm to-host rejects bad options with a usage error") {
  CHECK(run_tsync("kvm to-host --ratio 5", "1\n").status == 2);
  CHECK(run_tsync("kvm to-host --offset 1 --ratio 5", "1\n").status == 2);
  CHECK(run_tsync("kvm to-host --offset 0x10", "1\n").status == 2);
  CHECK(run_tsync("kvm to-host --offset 1 --frac-bits 64 --ratio 1", "1\n").status == 2);
  CHECK(run_tsync("kvm to-host --offset 1 --bogus 3", "1\n").status == 2);
  CHECK(run_tsync("kvm to-host --offset 1 --offset2 3", "1\n").status == 2);
}

TEST_CASE("tsync kvm params prints debugfs parameters as JSON and to-host reads them") {
  std::string tmpl = (fs::temp_directory_path() / "tsync_kvm_cli_tree_XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const fs::path root(tmpl);
  for (int id : {0, 2}) {
    const fs::path d = root / "4242-12" / ("vcpu" + std::to_string(id));
    fs::create_directories(d);
    std::ofstream(d / "tsc-offset") << "-18633982886952159\n";
    std::ofstream(d / "tsc-scaling-ratio") << "187650047023786\n";
    std::ofstream(d / "tsc-scaling-ratio-frac-bits") << "48\n";
    std::ofstream(d / "pid") << (5000 + id) << "\n";
  }
  auto r = run_tsync("kvm params --pid 4242 --root '" + tmpl + "'", "");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"pid\": 4242") != std::string::npos);
  CHECK(r.out.find("\"fd\": 12") != std::string::npos);
  CHECK(r.out.find("{\"id\": 0, \"tsc_offset\": -18633982886952159") != std::string::npos);
  CHECK(r.out.find("{\"id\": 2, ") != std::string::npos);
  CHECK(r.out.find("\"ratio\": 187650047023786, \"frac_bits\": 48") != std::string::npos);
  CHECK(r.out.find("\"thread_pid\": 5002") != std::string::npos);
  auto h = run_tsync("kvm to-host --pid 4242 --root '" + tmpl + "'", "82304553443\n");
  CHECK(h.status == 0);
  CHECK(h.out == "27951088470225859\n");
  auto v = run_tsync("kvm to-host --pid 4242 --vcpu 1 --root '" + tmpl + "'", "82304553443\n");
  CHECK(v.status == 1);  // no vCPU 1 (ids are 0 and 2)
  auto missing = run_tsync("kvm params --pid 4243 --root '" + tmpl + "'", "");
  CHECK(missing.status == 1);
  CHECK(missing.err.find("not found") != std::string::npos);
  fs::remove_all(root);
}

TEST_CASE("tsync kvm to-host --help documents the parameters") {
  auto r = run_tsync("kvm to-host --help", "");
  CHECK(r.status == 0);
  for (const char* opt : {"--offset", "--ratio", "--frac-bits", "--pid", "--fd", "--root", "--vcpu", "--nested",
                          "--offset2", "--ratio2", "--bucket"}) {
    INFO(opt);
    CHECK(r.out.find(opt) != std::string::npos);
  }
}

#endif  // TSYNC_CLI_PATH
