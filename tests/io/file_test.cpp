#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tsync/io/file.hpp"

using tsync::errc;
using tsync::io::read_small_file;

namespace {
std::string temp_path(const char* tag) {
  return std::string(TSYNC_TEST_BINARY_DIR) + "/io_file_" + tag + "_" + std::to_string(getpid());
}
}  // namespace

TEST_CASE("a small regular file is read whole") {
  const auto p = temp_path("ok");
  { std::ofstream(p) << "a,b\n1,2\n"; }
  auto r = read_small_file(p);
  std::remove(p.c_str());
  REQUIRE(r);
  CHECK(*r == "a,b\n1,2\n");
}

TEST_CASE("a directory reads as is a directory naming it") {
  auto r = read_small_file(TSYNC_TEST_BINARY_DIR);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_argument);
  CHECK(r.error().field == TSYNC_TEST_BINARY_DIR);
  CHECK(r.error().message.find("is a directory") != std::string::npos);
  CHECK(r.error().message.find("truncated") == std::string::npos);
}

TEST_CASE("a device is refused by name without reading it") {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = read_small_file("/dev/zero");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::unsupported);
  CHECK(r.error().message.find("/dev/zero") == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
}

TEST_CASE("a missing or unreadable file maps errno to a code") {
  auto r = read_small_file("/nonexistent/tsync/file");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::not_found);
  CHECK(r.error().message.find("/nonexistent/tsync/file") == 0);
  CHECK(read_small_file("").error().code == errc::invalid_argument);
}

TEST_CASE("a file above the size cap is oversized") {
  const auto p = temp_path("big");
  { std::ofstream(p) << std::string(1000, 'x'); }
  auto r = read_small_file(p, 999);
  auto ok = read_small_file(p, 1000);
  std::remove(p.c_str());
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::oversized);
  CHECK(r.error().message.find("999") != std::string::npos);
  CHECK(ok);
}

TEST_CASE("a pipe is read up to the cap") {
  const auto p = temp_path("fifo");
  REQUIRE(mkfifo(p.c_str(), 0600) == 0);
  // A writer that sends more than the cap and would block forever if read whole.
  const std::string cmd = "yes > " + p + " 2>/dev/null &";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto r = read_small_file(p, 1 << 16);
  std::remove(p.c_str());
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::oversized);
}

TEST_CASE("control bytes in quoted names are escaped") {
  auto r = read_small_file(std::string("/nonexistent/a\x1b[2Jb\n", 21));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find('\x1b') == std::string::npos);
  CHECK(r.error().message.find("\\x1b") != std::string::npos);
  CHECK(r.error().message.find('\n') == std::string::npos);
}
