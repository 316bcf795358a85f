// `tsync agent` and `tsync sync` as two processes over a Unix socket; the
// tables the sync writes are read back with the correction engine's CSV loader.
#ifdef TSYNC_CLI_PATH
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "tsync/correct.hpp"
#include "tsync/io/json.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/estimate/model.hpp"

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
int run(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
}  // namespace

TEST_CASE("tsync agent and tsync sync produce per-vCPU tables that tsync correct can load") {
  const auto dir = std::filesystem::path(TSYNC_TEST_BINARY_DIR) / ("sync_cli." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string sock = (dir / "agent.sock").string();
  const std::string cli = TSYNC_CLI_PATH;
  // An output prefix with a double quote: the session summary must still be valid JSON.
  const std::string out = "out\"q";
  // The agent's clock is shifted by +1 s: host - guest = -1 s.
  const std::string agent = "'" + cli + "' agent --transport unix:" + sock +
                            " --connections 2 --shift 1000000000 --idle-timeout 20s > '" + (dir / "agent.log").string() +
                            "' 2>&1; echo $? > '" + (dir / "agent.rc").string() + "'";
  REQUIRE(run("(" + agent + ") &") == 0);
  const int rc = run("'" + cli + "' sync --transport unix:" + sock +
                     " --vcpus 2 --probes 100 --count 3 --interval 10ms --connect-timeout 10s --output '" +
                     (dir / out).string() + "' > '" + (dir / "sync.log").string() + "' 2>&1");
  INFO(slurp(dir / "sync.log"));
  CHECK(rc == 0);
  // The agent exits after its 2 connections.
  for (int i = 0; i < 200 && !std::filesystem::exists(dir / "agent.rc"); ++i) ::usleep(50'000);
  INFO("agent: " << slurp(dir / "agent.log"));
  CHECK(slurp(dir / "agent.rc") == "0\n");
  for (int v = 0; v < 2; ++v) {
    std::ifstream in(dir / (out + ".vcpu" + std::to_string(v) + ".csv"));
    REQUIRE(in);
    auto table = tsync::io::load_table_csv(in);
    REQUIRE(table.has_value());
    REQUIRE(table->size() == 3);
    for (const auto& s : table->samples()) {
      CHECK(s.offset.count() < -1'000'000'000 + 1'000'000);
      CHECK(s.offset.count() > -1'000'000'000 - 1'000'000);
    }
  }
  const auto summary = slurp(dir / (out + ".session.json"));
  CHECK(summary.find("\"vcpu\": 1") != std::string::npos);
  INFO(summary);
  CHECK(tsync::io::json::parse(summary).has_value());
  for (int v = 0; v < 2; ++v) {
    // The per-vCPU model is in the estimators' format, so `tsync correct --model` reads it.
    auto m = tsync::estimate::model::from_json(slurp(dir / (out + ".vcpu" + std::to_string(v) + ".model.json")));
    REQUIRE(m.has_value());
    REQUIRE_FALSE(m->segments.empty());
    const std::int64_t g = m->segments.front().ref;
    auto h = m->to_host(tsync::at_ns<tsync::guest>(g));
    auto hb = m->hard_bounds(tsync::at_ns<tsync::guest>(g));
    REQUIRE(h.has_value());
    REQUIRE(hb.has_value());
    CHECK(tsync::raw_ns(*h) - g < -1'000'000'000 + 1'000'000);
    CHECK(tsync::raw_ns(*h) - g > -1'000'000'000 - 1'000'000);
    CHECK(hb->lo <= *h);
    CHECK(*h <= hb->hi);
  }
  const auto series = slurp(dir / (out + ".series.csv"));
  CHECK(std::count(series.begin(), series.end(), '\n') == 7);  // header + 2 vCPUs x 3 series
  std::filesystem::remove_all(dir);
}

TEST_CASE("tsync sync reports a missing agent and bad options clearly") {
  const std::string cli = TSYNC_CLI_PATH;
  CHECK(run("'" + cli + "' sync --transport unix:/nonexistent/dir/x.sock --connect-timeout 100ms --quiet 2>/dev/null") == 1);
  CHECK(run("'" + cli + "' sync --transport bogus:1 2>/dev/null") == 2);
  CHECK(run("'" + cli + "' sync --transport unix:/x --probes 0 2>/dev/null") == 2);
  CHECK(run("'" + cli + "' sync --transport unix:/x --interval 5parsecs 2>/dev/null") == 2);
  CHECK(run("'" + cli + "' sync --transport unix:/x --estimator nope 2>/dev/null") == 2);
  CHECK(run("'" + cli + "' agent --transport tcp:127.0.0.1 2>/dev/null") == 2);
  CHECK(run("'" + cli + "' agent --transport unix:/x --clock no_such_clock 2>/dev/null") == 1);
}
TEST_CASE("tsync sync chooses KVM for x86-tsc with readable debugfs and writes exact step tables") {
  const std::string cli = TSYNC_CLI_PATH;
  const auto dir = std::filesystem::path(TSYNC_TEST_BINARY_DIR) / ("sync_kvm." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  // A fake debugfs tree: VM 4242-11 with sparse vCPUs 0 and 3, Intel 2.0 GHz guest on 2.999999 GHz (T8).
  for (const char* v : {"vcpu0", "vcpu3"}) {
    const auto d = dir / "kvm" / "4242-11" / v;
    std::filesystem::create_directories(d);
    std::ofstream(d / "tsc-offset") << "-18633982886952159\n";
    std::ofstream(d / "tsc-scaling-ratio") << "187650047023786\n";
    std::ofstream(d / "tsc-scaling-ratio-frac-bits") << "48\n";
  }
  const std::string common = "'" + cli + "' sync --kvm-pid 4242 --kvm-root '" + (dir / "kvm").string() + "' --output '" +
                             (dir / "k").string() + "'";
  CHECK(run(common + " --clock x86-tsc > '" + (dir / "log").string() + "' 2>&1") == 0);
  const auto log = slurp(dir / "log");
  INFO(log);
  CHECK(log.find("protocol kvm: chosen") != std::string::npos);
  CHECK(log.find("protocol probe: refused") != std::string::npos);
  // vCPU 3's table maps the T9 guest stamp back to its exact host TSC (T10) in step mode.
  std::ofstream(dir / "g.txt") << "82304553443\n";
  CHECK(run("'" + cli + "' correct --mode step --table '" + (dir / "k.vcpu3.csv").string() + "' < '" +
            (dir / "g.txt").string() + "' > '" + (dir / "h.txt").string() + "'") == 0);
  CHECK(slurp(dir / "h.txt") == "27951088470225859\n");
  // Another clock: KVM is refused with its reason, and without a transport nothing can run.
  CHECK(run(common + " --clock mono_raw > '" + (dir / "log2").string() + "' 2>&1") == 1);
  CHECK(slurp(dir / "log2").find("protocol kvm: refused (KVM offsets relate TSCs only") != std::string::npos);
  // No such VM: refused because debugfs cannot be read.
  CHECK(run("'" + cli + "' sync --clock x86-tsc --kvm-pid 999 --kvm-root '" + (dir / "kvm").string() + "' > '" +
            (dir / "log3").string() + "' 2>&1") == 1);
  CHECK(slurp(dir / "log3").find("KVM debugfs is not readable") != std::string::npos);
  std::filesystem::remove_all(dir);
}
#endif
