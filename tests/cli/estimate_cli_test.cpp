// Runs the built `tsync estimate` command (when the integrator defines
// TSYNC_CLI_PATH for this folder).
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tsync/estimate/model.hpp"

#ifdef TSYNC_CLI_PATH
namespace {
int run_estimate(const std::string& args, const std::string& out_file) {
  const std::string cmd = std::string(TSYNC_CLI_PATH) + " " + args + " >" + out_file + " 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write_all(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}
}  // namespace

TEST_CASE("tsync estimate turns a probes CSV into a model JSON that reads back", "[cli]") {
  const std::string dir = TSYNC_TEST_BINARY_DIR;
  std::string csv = "t1,g,t2,burst,id\n";
  for (int b = 0; b < 5; ++b)
    for (int i = 0; i < 20; ++i) {
      const long long t1 = 1'000'000'000LL * (b + 1) + 50'000LL * i;
      csv += std::to_string(t1) + "," + std::to_string(t1 + 10'000 - 777) + "," + std::to_string(t1 + 20'000 + i % 3) +
             "," + std::to_string(b) + "," + std::to_string(i) + "\n";
    }
  write_all(dir + "/est_probes.csv", csv);
  for (const char* name : {"fastest_response", "split_envelope", "convex_hull", "segmented"}) {
    INFO(name);
    REQUIRE(run_estimate(std::string("estimate --estimator ") + name + " " + dir + "/est_probes.csv",
                         dir + "/est_model.json") == 0);
    auto m = tsync::estimate::model::from_json(read_all(dir + "/est_model.json"));
    REQUIRE(m.has_value());
    CHECK(m->estimator == name);
    auto h = m->to_host(tsync::at_ns<tsync::guest>(3'000'000'000LL));
    REQUIRE(h.has_value());
    CHECK(std::llabs(tsync::raw_ns(*h) - (3'000'000'000LL + 777)) <= 2);
  }
  REQUIRE(run_estimate("estimate --estimator convex_hull --out " + dir + "/est_out.json " + dir + "/est_probes.csv",
                       dir + "/est_summary.txt") == 0);
  CHECK(tsync::estimate::model::from_json(read_all(dir + "/est_out.json")).has_value());
  REQUIRE(run_estimate("estimate --list", dir + "/est_list.txt") == 0);
  CHECK(read_all(dir + "/est_list.txt").find("segmented") != std::string::npos);
}

TEST_CASE("tsync estimate reports malformed lines and bad arguments with a non-zero exit", "[cli]") {
  const std::string dir = TSYNC_TEST_BINARY_DIR;
  write_all(dir + "/est_bad.csv", "1,2,3\n4,5,6\n7,x,9\n");
  CHECK(run_estimate("estimate --estimator median " + dir + "/est_bad.csv", dir + "/est_err.txt") != 0);
  CHECK(read_all(dir + "/est_err.txt").find("line 3") != std::string::npos);
  CHECK(run_estimate("estimate --estimator no_such " + dir + "/est_bad.csv", dir + "/est_err.txt") != 0);
  CHECK(run_estimate("estimate --estimator median", dir + "/est_err.txt") != 0);
  CHECK(run_estimate("estimate --estimator median /no/such/file.csv", dir + "/est_err.txt") != 0);
  write_all(dir + "/est_rev.csv", "10,5,0\n");
  CHECK(run_estimate("estimate --estimator median --strict " + dir + "/est_rev.csv", dir + "/est_err.txt") != 0);
  CHECK(read_all(dir + "/est_err.txt").find("causality") != std::string::npos);
}
#endif
