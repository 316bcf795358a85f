// Runs the built `tsync estimate` command (when the integrator defines
// TSYNC_CLI_PATH for this folder).
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tsync/estimate/model.hpp"
#include "tsync/io/session_model_json.hpp"

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
/// Five bursts of 20 probes, 1 s apart: t1, t2 of the initiator, g = t1 + 10 µs + `g_shift`
/// (so with the host as initiator, host - guest = -g_shift).
std::string probes_csv(long long g_shift) {
  std::string csv = "t1,g,t2,burst,id\n";
  for (int b = 0; b < 5; ++b)
    for (int i = 0; i < 20; ++i) {
      const long long t1 = 1'000'000'000LL * (b + 1) + 50'000LL * i;
      csv += std::to_string(t1) + "," + std::to_string(t1 + 10'000 + g_shift) + "," +
             std::to_string(t1 + 20'000 + i % 3) + "," + std::to_string(b) + "," + std::to_string(i) + "\n";
    }
  return csv;
}
}  // namespace

TEST_CASE("tsync estimate turns a probes CSV into a model JSON that reads back", "[cli]") {
  const std::string dir = TSYNC_TEST_BINARY_DIR;
  write_all(dir + "/est_probes.csv", probes_csv(-777));  // host - guest = +777 ns
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
namespace {
/// Ten bursts of 20 probes of one vCPU, 1 s apart; host - guest is +777 ns
/// until burst 5, then +2,000,777 ns (the guest clock stood still 2 ms: a pause).
/// With `segments`, the column `tsync sync` writes (0 before the step, 1 after).
std::string stepped_probes(bool segments) {
  std::string csv = segments ? "t1,g,t2,burst,id,vcpu,segment\n" : "t1,g,t2,burst,id\n";
  for (int b = 0; b < 10; ++b)
    for (int i = 0; i < 20; ++i) {
      const long long t1 = 1'000'000'000LL * (b + 1) + 50'000LL * i;
      const long long off = b < 5 ? 777 : 2'000'777;
      csv += std::to_string(t1) + "," + std::to_string(t1 + 10'000 - off) + "," + std::to_string(t1 + 20'000 + i % 3) +
             "," + std::to_string(b) + "," + std::to_string(i) + (segments ? ",0," + std::to_string(b < 5 ? 0 : 1) : "") +
             "\n";
    }
  return csv;
}

/// host - guest of the session model at guest time `g` (from the part whose span holds it).
long long offset_at(const tsync::estimate::session_model& sm, long long g) {
  for (const auto& p : sm.parts)
    if (g >= p.first_guest && g <= p.last_guest) {
      auto h = p.model.to_host(tsync::at_ns<tsync::guest>(g));
      REQUIRE(h.has_value());
      return tsync::raw_ns(*h) - g;
    }
  FAIL("no part holds guest time " << g);
  return 0;
}
}  // namespace

TEST_CASE("tsync estimate --breaks finds a clock step offline and fits each side alone", "[cli]") {
  const std::string dir = TSYNC_TEST_BINARY_DIR;
  write_all(dir + "/est_step.csv", stepped_probes(false));
  REQUIRE(run_estimate("estimate --estimator convex_hull --breaks --out " + dir + "/est_step.json " + dir +
                           "/est_step.csv",
                       dir + "/est_step.txt") == 0);
  const std::string said = read_all(dir + "/est_step.txt");
  INFO(said);
  CHECK(said.find("break (clock_step) in burst 5") != std::string::npos);
  CHECK(said.find("2 segment(s) fitted, 1 break(s)") != std::string::npos);
  auto sm = tsync::io::read_session_model_json(read_all(dir + "/est_step.json"));
  REQUIRE(sm.has_value());
  REQUIRE(sm->parts.size() == 2);
  REQUIRE(sm->breaks.size() == 1);
  CHECK(sm->breaks[0].kind == tsync::estimate::break_kind::clock_step);
  CHECK(std::llabs(offset_at(*sm, 3'000'000'000LL) - 777) <= 2);
  CHECK(std::llabs(offset_at(*sm, 8'000'000'000LL - 2'000'777) - 2'000'777) <= 2);
}

TEST_CASE("tsync estimate fits a sync probes file segment by segment, or one segment with --segment", "[cli]") {
  const std::string dir = TSYNC_TEST_BINARY_DIR;
  write_all(dir + "/est_seg.csv", stepped_probes(true));
  REQUIRE(run_estimate("estimate --estimator convex_hull --out " + dir + "/est_seg.json " + dir + "/est_seg.csv",
                       dir + "/est_seg.txt") == 0);
  INFO(read_all(dir + "/est_seg.txt"));
  auto sm = tsync::io::read_session_model_json(read_all(dir + "/est_seg.json"));
  REQUIRE(sm.has_value());
  REQUIRE(sm->parts.size() == 2);
  CHECK(sm->parts[0].segment == 0);
  CHECK(sm->parts[1].segment == 1);
  CHECK(sm->parts[1].epoch == 0);  // guest time went on forward
  CHECK(std::llabs(offset_at(*sm, 3'000'000'000LL) - 777) <= 2);
  CHECK(std::llabs(offset_at(*sm, 8'000'000'000LL - 2'000'777) - 2'000'777) <= 2);

  REQUIRE(run_estimate("estimate --estimator convex_hull --segment 1 " + dir + "/est_seg.csv", dir + "/est_s1.json") == 0);
  auto m = tsync::estimate::model::from_json(read_all(dir + "/est_s1.json"));
  REQUIRE(m.has_value());
  auto h = m->to_host(tsync::at_ns<tsync::guest>(8'000'000'000LL - 2'000'777));
  REQUIRE(h.has_value());
  CHECK(std::llabs(tsync::raw_ns(*h) - 8'000'000'000LL) <= 2);

  CHECK(run_estimate("estimate --segment 7 " + dir + "/est_seg.csv", dir + "/est_seg_err.txt") == 1);
  CHECK(read_all(dir + "/est_seg_err.txt").find("no probes in that segment") != std::string::npos);
  write_all(dir + "/est_noseg.csv", stepped_probes(false));
  CHECK(run_estimate("estimate --segment 0 " + dir + "/est_noseg.csv", dir + "/est_seg_err.txt") == 1);
  CHECK(read_all(dir + "/est_seg_err.txt").find("--segment needs a segment column") != std::string::npos);
  CHECK(run_estimate("estimate --segment x " + dir + "/est_seg.csv", dir + "/est_seg_err.txt") == 2);
  CHECK(run_estimate("estimate --breaks --segment 0 " + dir + "/est_seg.csv", dir + "/est_seg_err.txt") == 2);
}

TEST_CASE("tsync estimate turns guest-initiated probes around (the file's initiator line or --initiator guest)", "[cli]") {
  const std::string dir = TSYNC_TEST_BINARY_DIR;
  // t1, t2 on the guest clock, g the host's stamp; host = guest + 777 ns.
  const std::string rows = probes_csv(777);
  write_all(dir + "/est_guest_hdr.csv", "# initiator: guest\n" + rows);
  write_all(dir + "/est_guest_plain.csv", rows);
  const auto offset_of = [&](const std::string& args) {
    REQUIRE(run_estimate("estimate --estimator convex_hull " + args, dir + "/est_guest.json") == 0);
    auto m = tsync::estimate::model::from_json(read_all(dir + "/est_guest.json"));
    REQUIRE(m.has_value());
    auto h = m->to_host(tsync::at_ns<tsync::guest>(3'000'000'000LL));
    auto hb = m->hard_bounds(tsync::at_ns<tsync::guest>(3'000'000'000LL));
    REQUIRE(h.has_value());
    REQUIRE(hb.has_value());
    CHECK(tsync::raw_ns(hb->lo) <= 3'000'000'777LL);
    CHECK(tsync::raw_ns(hb->hi) >= 3'000'000'777LL);
    return tsync::raw_ns(*h) - 3'000'000'000LL;
  };
  CHECK(std::llabs(offset_of(dir + "/est_guest_hdr.csv") - 777) <= 2);
  CHECK(std::llabs(offset_of("--initiator guest " + dir + "/est_guest_plain.csv") - 777) <= 2);
  // read as if the host had initiated, the sign is the other way round
  CHECK(std::llabs(offset_of("--initiator host " + dir + "/est_guest_hdr.csv") + 777) <= 2);
  CHECK(run_estimate("estimate --initiator nobody " + dir + "/est_guest_plain.csv", dir + "/est_guest_err.txt") == 2);
  write_all(dir + "/est_guest_bad.csv", "# initiator: martian\n" + rows);
  CHECK(run_estimate("estimate " + dir + "/est_guest_bad.csv", dir + "/est_guest_err.txt") == 1);
  CHECK(read_all(dir + "/est_guest_err.txt").find("initiator") != std::string::npos);
}
#endif
