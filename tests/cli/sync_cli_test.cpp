// `tsync agent` and `tsync sync` as two processes over a Unix socket; the
// tables the sync writes are read back with the correction engine's CSV loader.
#ifdef TSYNC_CLI_PATH
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstdint>
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
/// One `tsync sync` (with `sync_args`) against an agent whose clock steps by
/// `step_ns` at every series, in a fresh work dir; the outputs are at `prefix`.
struct stepped_run {
  std::filesystem::path dir;
  std::string prefix;
  int rc = -1;
};
stepped_run run_stepped(const std::string& name, const std::string& step_ns, const std::string& sync_args) {
  stepped_run r;
  r.dir = std::filesystem::path(TSYNC_TEST_BINARY_DIR) / (name + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(r.dir);
  std::filesystem::create_directories(r.dir);
  const std::string sock = (r.dir / "agent.sock").string();
  const std::string cli = TSYNC_CLI_PATH;
  if (run("('" + cli + "' agent --transport unix:" + sock + " --connections 1 --no-pin --step-per-series " + step_ns +
          " --idle-timeout 20s > /dev/null 2>&1) &") != 0)
    return r;
  r.prefix = (r.dir / "o").string();
  r.rc = run("'" + cli + "' sync " + sync_args + " --transport unix:" + sock + " --probes 60 --interval 50ms " +
             "--connect-timeout 10s --output '" + r.prefix + "' > '" + r.prefix + ".log' 2> '" + r.prefix + ".err'");
  return r;
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
    REQUIRE(table->size() >= 2);  // the whole-trace model's samples: each piece's first and last time
    for (const auto& s : table->samples()) {
      CHECK(s.offset.count() < -1'000'000'000 + 1'000'000);
      CHECK(s.offset.count() > -1'000'000'000 - 1'000'000);
      REQUIRE(s.bounds.has_value());  // the table carries its hard bounds
      CHECK(s.bounds->lo <= 0);
      CHECK(s.bounds->hi >= 0);
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
  auto data_lines = [](const std::string& text) {
    std::size_t n = 0;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) n += !l.empty() && l[0] != '#' ? 1u : 0u;
    return n;
  };
  const auto series = slurp(dir / (out + ".series.csv"));
  CHECK(data_lines(series) == 7);  // column names + 2 vCPUs x 3 series
  CHECK(series.find("# sign: host = guest + offset") != std::string::npos);
  // Every probe is kept, in the format tsync estimate reads.
  const auto probes = slurp(dir / (out + ".probes.csv"));
  CHECK(data_lines(probes) == 1 + 2 * 3 * 100);
  CHECK(run("'" + cli + "' estimate --estimator convex_hull --vcpu 1 '" + (dir / (out + ".probes.csv")).string() +
            "' > /dev/null") == 0);
  CHECK(summary.find("\"model_estimator\": \"convex_hull\"") != std::string::npos);
  CHECK(summary.find("\"breaks\": []") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("tsync sync: clock steps are breaks; nothing is interpolated across them; correct answers per segment") {
  const std::string cli = TSYNC_CLI_PATH;
  // The agent's clock jumps by +5 ms at every series: host - guest drops by 5 ms each time.
  const auto r = run_stepped("sync_breaks", "5000000", "--count 3");
  const auto& dir = r.dir;
  const std::string& p = r.prefix;
  INFO(slurp(p + ".log") << slurp(p + ".err"));
  REQUIRE(r.rc == 0);
  const auto err = slurp(p + ".err");
  CHECK(err.find("break (clock_step)") != std::string::npos);
  const auto summary = slurp(p + ".session.json");
  auto doc = tsync::io::json::parse(summary);
  REQUIRE(doc.has_value());
  CHECK(summary.find("\"kind\": \"clock_step\"") != std::string::npos);
  // The model has one part per segment; a guest time between two segments gets
  // an interval that covers both sides of the break, never a narrow one.
  const auto model = slurp(p + ".vcpu0.model.json");
  CHECK(model.find("\"version\": 2") != std::string::npos);
  std::ifstream tin(p + ".vcpu0.csv");
  auto parsed = tsync::io::parse_table_csv(tin);
  REQUIRE(parsed.has_value());
  REQUIRE(parsed->segments.size() == parsed->samples.size());
  REQUIRE(parsed->segments.back() == 2);
  std::int64_t last0 = 0, first1 = 0, off0 = 0, off1 = 0;
  for (std::size_t i = 0; i < parsed->samples.size(); ++i) {
    if (parsed->segments[i] == 0) {
      last0 = tsync::raw_ns(parsed->samples[i].guest_time);
      off0 = parsed->samples[i].offset.count();
    }
    if (parsed->segments[i] == 1 && first1 == 0) {
      first1 = tsync::raw_ns(parsed->samples[i].guest_time);
      off1 = parsed->samples[i].offset.count();
    }
  }
  REQUIRE(first1 > last0);
  const std::int64_t mid = last0 + (first1 - last0) / 2;
  std::ofstream(dir / "g.txt") << mid << "\n";
  for (const char* src : {"--model", "--table"}) {
    const std::string file = std::string(src) == "--model" ? p + ".vcpu0.model.json" : p + ".vcpu0.csv";
    REQUIRE(run("'" + cli + "' correct " + src + " '" + file + "' --bounds < '" + (dir / "g.txt").string() + "' > '" +
                (dir / "h.txt").string() + "'") == 0);
    const auto line = slurp(dir / "h.txt");
    INFO(src << ": " << line);
    std::int64_t h = 0, lo = 0, hi = 0;
    char c1 = 0, c2 = 0;
    std::istringstream(line) >> h >> c1 >> lo >> c2 >> hi;
    CHECK(lo <= mid + off0);  // the guest time may lie before the break ...
    CHECK(hi >= mid + off0);
    CHECK(lo <= mid + off1);  // ... or after it
    CHECK(hi >= mid + off1);
    CHECK(std::abs(h - (mid + off0)) < 100'000);  // the point is the earlier segment's, not interpolated
    // With --segment the answer is that segment's alone.
    REQUIRE(run("'" + cli + "' correct " + src + " '" + file + "' --segment 1 < '" + (dir / "g.txt").string() + "' > '" +
                (dir / "h1.txt").string() + "'") == 0);
    CHECK(std::abs(std::stoll(slurp(dir / "h1.txt")) - (mid + off1)) < 100'000);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("tsync sync --role guest: steps of the host's clock are breaks and each segment holds its offset") {
  // The sync runs as the guest; the agent plays the host, whose clock jumps by +5 ms
  // at every series: host - guest is 5, 10, 15 ms in the three segments.
  const auto r = run_stepped("sync_guest_role", "5000000", "--role guest --count 3");
  const std::string& p = r.prefix;
  INFO(slurp(p + ".log") << slurp(p + ".err"));
  REQUIRE(r.rc == 0);
  CHECK(slurp(p + ".err").find("break (clock_step)") != std::string::npos);
  CHECK(slurp(p + ".vcpu0.model.json").find("\"version\": 2") != std::string::npos);
  std::ifstream tin(p + ".vcpu0.csv");
  auto parsed = tsync::io::parse_table_csv(tin);
  REQUIRE(parsed.has_value());
  REQUIRE(parsed->segments.size() == parsed->samples.size());
  REQUIRE(parsed->segments.back() == 2);
  for (std::size_t i = 0; i < parsed->samples.size(); ++i) {
    const auto& smp = parsed->samples[i];
    const std::int64_t truth = 5'000'000 * static_cast<std::int64_t>(parsed->segments[i] + 1);
    INFO("sample " << i << " segment " << parsed->segments[i] << " offset " << smp.offset.count());
    CHECK(std::abs(smp.offset.count() - truth) < 100'000);
    REQUIRE(smp.bounds.has_value());
    // The same clock on both sides, so the truth is the step alone: a hard interval holds it.
    CHECK(smp.offset.count() + smp.bounds->lo <= truth);
    CHECK(smp.offset.count() + smp.bounds->hi >= truth);
  }
  std::filesystem::remove_all(r.dir);
}

TEST_CASE("tsync sync: a backward clock is a new epoch; correct says 'unknown' with status 3 where epochs meet") {
  const std::string cli = TSYNC_CLI_PATH;
  // The agent's clock goes back 10 s at every series: guest times repeat (like a reboot).
  const auto r = run_stepped("sync_epochs", "-10000000000", "--count 2");
  const auto& dir = r.dir;
  const std::string& p = r.prefix;
  INFO(slurp(p + ".log") << slurp(p + ".err"));
  REQUIRE(r.rc == 0);
  CHECK(slurp(p + ".err").find("backwards (a reboot") != std::string::npos);
  std::ifstream tin(p + ".vcpu0.csv");
  auto parsed = tsync::io::parse_table_csv(tin);
  REQUIRE(parsed.has_value());
  REQUIRE(parsed->epochs.back() == 1);
  const std::int64_t g = tsync::raw_ns(parsed->samples.front().guest_time);
  std::ofstream(dir / "g.txt") << g << "\n";
  for (const char* src : {"--model", "--table"}) {
    const std::string file = std::string(src) == "--model" ? p + ".vcpu0.model.json" : p + ".vcpu0.csv";
    CHECK(run("'" + cli + "' correct " + src + " '" + file + "' --bounds < '" + (dir / "g.txt").string() + "' > '" +
              (dir / "h.txt").string() + "' 2>/dev/null") == 3);
    CHECK(slurp(dir / "h.txt") == "unknown\n");
    CHECK(run("'" + cli + "' correct " + src + " '" + file + "' --segment 0 --bounds < '" + (dir / "g.txt").string() +
              "' > /dev/null") == 0);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("tsync sync refuses a whole-trace estimator per series and names the option to use") {
  const std::string cli = TSYNC_CLI_PATH;
  const auto dir = std::filesystem::path(TSYNC_TEST_BINARY_DIR);
  const auto err = (dir / ("sync_est." + std::to_string(::getpid()) + ".err")).string();
  CHECK(run("'" + cli + "' sync --transport unix:/x --estimator convex_hull 2> '" + err + "'") == 2);
  CHECK(slurp(err).find("use --model-estimator convex_hull") != std::string::npos);
  CHECK(run("'" + cli + "' sync --transport unix:/x --model-estimator split_envelope 2> '" + err + "'") == 2);
  CHECK(slurp(err).find("per-series estimator") != std::string::npos);
  std::filesystem::remove(err);
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
