// `tsync correct` end to end: a table file, a malformed table line, --reverse.
// Runs the built tool; the path comes from TSYNC_CLI_PATH.
#include <catch2/catch.hpp>

#ifdef TSYNC_CLI_PATH
#include "cli_util.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>
#include <fstream>
#include <string>

#include "tsync/estimate/model.hpp"

namespace {

using tsync_cli_test::run_result;

run_result run(const std::string& args, const std::string& input) {
  return tsync_cli_test::tsync_with_input("correct_cli", "correct " + args, input);
}

std::string write_table(const std::string& name, const std::string& text) {
  return tsync_cli_test::write_tmp("correct_cli", name, text);
}

}  // namespace

TEST_CASE("tsync correct maps guest timestamps through a table file") {
  const auto table = write_table("t1.csv", "# time,offset\n100,1000\n200,1000\n300,5000\n");
  const auto r = run("--table '" + table + "' --mode step", "150\n350\n# comment\n100\n");
  CHECK(r.status == 0);
  CHECK(r.out == "1150\n5350\n1100\n");
  const auto i = run("--table '" + table + "'", "250\n400\n");
  CHECK(i.status == 0);
  CHECK(i.out == "3250\n9400\n");  // 1000 + 50*4000/100; extrapolated 1000 + 200*40
  const auto c = run("--table '" + table + "' --outside clamp", "400\n");
  CHECK(c.out == "5400\n");
}

TEST_CASE("tsync correct names the line of a malformed table") {
  const auto table = write_table("t2.csv", "100,1000\n# ok so far\n200,x\n");
  const auto r = run("--table '" + table + "'", "150\n");
  CHECK(r.status == 1);
  CHECK(r.out.find("line 3") != std::string::npos);
}

TEST_CASE("tsync correct names the line of a malformed input timestamp") {
  const auto table = write_table("t3.csv", "0,10\n");
  const auto r = run("--table '" + table + "'", "1\n2\nthree\n");
  CHECK(r.status == 1);
  CHECK(r.out.find("11\n12\n") != std::string::npos);  // lines before the bad one are still written
  CHECK(r.out.find("line 3") != std::string::npos);
}

TEST_CASE("tsync correct --reverse maps host timestamps back to guest timestamps") {
  const auto table = write_table("t4.csv", "0,1000\n1000,1100\n");
  const auto fwd = run("--table '" + table + "'", "0\n500\n1000\n");
  REQUIRE(fwd.status == 0);
  CHECK(fwd.out == "1000\n1550\n2100\n");
  const auto rev = run("--table '" + table + "' --reverse", fwd.out);
  CHECK(rev.status == 0);
  CHECK(rev.out == "0\n500\n1000\n");
}

TEST_CASE("tsync correct reads a model JSON written by the estimators") {
  tsync::estimate::model m;
  m.estimator = "test";
  tsync::estimate::segment seg;
  seg.begin = 0;
  seg.end = 2'000'000;
  seg.ref = 0;
  seg.fit = {1000, std::int64_t{1} << 38};  // offset 1000 at guest 0, drift 2^-10
  seg.lo = {{990, std::int64_t{1} << 38}};
  seg.hi = {{1010, std::int64_t{1} << 38}};
  m.segments.push_back(seg);
  const auto path = write_table("model.json", m.to_json());
  const auto r = run("--model '" + path + "'", "0\n1024\n1999999\n");
  CHECK(r.status == 0);
  // the model's samples (offsets 1000 at 0 and 1000 + round(1999999 / 1024) at
  // 1999999) interpolated with floor rounding
  CHECK(r.out == "1000\n2024\n" + std::to_string(1999999 + 1000 + 1953) + "\n");
  // --bounds adds the model's hard interval: offset 990..1010 (+ drift) around the host time,
  // widened by the model's 1 ns rounding slack each way.
  const auto b = run("--model '" + path + "' --bounds", "0\n1024\n");
  CHECK(b.status == 0);
  CHECK(b.out == "1000,989,1011\n2024,2014,2036\n");
  // a plain table without bounds cannot give an interval, and --bounds with --reverse is a usage error
  const auto plain = write_table("plain.csv", "0,5\n100,5\n");
  const auto nb = run("--table '" + plain + "' --bounds", "10\n");
  CHECK(nb.status == 1);
  CHECK(nb.out.find("no interval") != std::string::npos);
  CHECK(run("--model '" + path + "' --bounds --reverse", "10\n").status == 2);
  const auto bad = write_table("bad_model.json", "{\"segments\": [");
  const auto e = run("--model '" + bad + "'", "0\n");
  CHECK(e.status == 1);
  CHECK(e.out.find("model") != std::string::npos);
}
#endif
