// End-to-end checks of the tool's file readers and duration options: bad
// files are refused by name and fast, durations are overflow-checked.
#include <catch2/catch.hpp>

#ifdef TSYNC_CLI_PATH
#include <chrono>
#include <string>

#include "cli_util.hpp"

using tsync_cli_test::run_tool;

namespace {
bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }
}  // namespace

TEST_CASE("tsync sync refuses a duration that overflows int64 nanoseconds") {
  // Regression: --duration 9999999999s became a 0.1 s session with exit 0.
  for (const char* opt : {"--duration 9999999999s", "--interval 9999999999s", "--connect-timeout 9999999999s",
                          "--probe-timeout 9999999999s", "--duration 10"}) {
    INFO(opt);
    auto r = run_tool(std::string("sync --transport unix:/nonexistent/tsync.sock ") + opt);
    CHECK(r.status == 2);
    CHECK(contains(r.out, "bad --"));
  }
}

TEST_CASE("tsync correct refuses a table that is a device or a directory fast and by name") {
  // Regression: correct --table /dev/zero ate memory.
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_tool("correct --table /dev/zero < /dev/null");
  CHECK(r.status != 0);
  CHECK(contains(r.out, "/dev/zero"));
  CHECK(contains(r.out, "not a regular file"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  auto d = run_tool(std::string("correct --table ") + TSYNC_TEST_BINARY_DIR + " < /dev/null");
  CHECK(d.status != 0);
  CHECK(contains(d.out, "is a directory"));
}

TEST_CASE("tsync tracecmd show names a directory or a device given as payload and does not abort") {
  // Regression: an uncaught exception aborted (exit 134).
  auto d = run_tool(std::string("tracecmd show --payload ") + TSYNC_TEST_BINARY_DIR);
  CHECK(d.status == 1);
  CHECK(contains(d.out, "is a directory"));
  auto z = run_tool("tracecmd show --payload /dev/zero");
  CHECK(z.status == 1);
  CHECK(contains(z.out, "not a regular file"));
  auto f = run_tool(std::string("tracecmd show ") + TSYNC_TEST_BINARY_DIR);
  CHECK(f.status == 1);
  CHECK(contains(f.out, "is a directory"));
  CHECK_FALSE(contains(f.out, "truncated"));
}

TEST_CASE("tsync simulate names the file line and key of an invalid scenario value") {
  // Regression: validation said "invalid argument" with no key and no line.
  const auto path = tsync_cli_test::write_tmp("scenario_key", "scenario.txt", "name=x\n\nclock.knot=1ns\n");
  auto r = run_tool("simulate --scenario-file " + path);
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(contains(r.out, "scenario.txt:3: clock.knot: "));
  CHECK(contains(r.out, "knots"));
  const auto bad = tsync_cli_test::write_tmp("scenario_key", "bad_line.txt", "duration=10s\nlink.loss=2\n");
  auto b = run_tool("simulate --scenario-file " + bad);
  INFO(b.out);
  CHECK(b.status == 1);
  CHECK(contains(b.out, "bad_line.txt:2: link.loss: "));
}

TEST_CASE("tsync simulate refuses a scenario file that is a directory") {
  // Regression: it silently ran the default scenario.
  auto d = run_tool(std::string("simulate --scenario-file ") + TSYNC_TEST_BINARY_DIR);
  CHECK(d.status == 1);
  CHECK(contains(d.out, "is a directory"));
}
#endif
