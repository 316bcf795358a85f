// The tsync tool's common behaviour: help, version, unknown commands.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {
struct run_result {
  int status;
  std::string out;
};
run_result run(const std::string& args) {
  std::string cmd = std::string(TSYNC_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}
}  // namespace

TEST_CASE("tsync --help lists the commands and exits 0") {
  auto r = run("--help");
  CHECK(r.status == 0);
  CHECK(r.out.find("usage: tsync <command>") != std::string::npos);
}

TEST_CASE("tsync --version prints the library version") {
  auto r = run("--version");
  CHECK(r.status == 0);
  CHECK(r.out.find("tsync 0.") != std::string::npos);
}

TEST_CASE("an unknown command is a usage error with exit status 2") {
  auto r = run("no-such-command");
  CHECK(r.status == 2);
  CHECK(r.out.find("unknown command 'no-such-command'") != std::string::npos);
}

TEST_CASE("tsync without arguments prints the overview and fails") {
  auto r = run("");
  CHECK(r.status == 2);
  CHECK(r.out.find("commands:") != std::string::npos);
}
