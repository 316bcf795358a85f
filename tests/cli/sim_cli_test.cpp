// Runs the built `tsync` tool's simulate and shootout commands (when the
// integrator defines TSYNC_CLI_PATH for this folder).
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tsync/io/probes_csv.hpp"

#ifdef TSYNC_CLI_PATH
namespace {
int run(const std::string& args) {
  const std::string cmd = std::string(TSYNC_CLI_PATH) + " " + args + " >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("tsync simulate writes the same readable probes for the same seed", "[cli]") {
  const std::string dir = TSYNC_TEST_BINARY_DIR;
  REQUIRE(run("simulate --scenario quiet --seed 4 --out " + dir + "/sim_a.csv --truth " + dir + "/sim_t.csv") == 0);
  REQUIRE(run("simulate --scenario quiet --seed 4 --out " + dir + "/sim_b.csv") == 0);
  const auto a = slurp(dir + "/sim_a.csv");
  CHECK(a == slurp(dir + "/sim_b.csv"));
  auto probes = tsync::io::read_probes_csv(a);
  REQUIRE(probes.has_value());
  CHECK(probes->size() == 61u * 339u);
  CHECK(slurp(dir + "/sim_t.csv").find("host,guest\n") != std::string::npos);
}

TEST_CASE("tsync simulate and shootout reject bad arguments with a non-zero exit", "[cli]") {
  CHECK(run("simulate --scenario no_such_thing") != 0);
  CHECK(run("simulate --scenario quiet --seed -1") != 0);
  CHECK(run("simulate") != 0);
  CHECK(run("shootout --scenario no_such_thing") != 0);
  CHECK(run("shootout --seeds 0") != 0);
  CHECK(run("shootout --self-check --quick --seeds 1 --scenario quiet") == 0);
}
#endif
