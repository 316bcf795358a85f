// Hostile clients and faults against `tsync agent` and `tsync sync` as
// processes (issue 13): connection churn, fd exhaustion with prlimit, silent
// hybrid-vsock clients, kill -9 and restart, a responder clock going backwards,
// outputs on a full disk, /dev/full and a closed stdout, kill -9 of a sync;
// garbage, oversized frames, half frames, protocol abuse and slow drips.
#ifdef TSYNC_CLI_PATH
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_process.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/probe/identity.hpp"
#include "tsync/probe/message.hpp"
#include "tsync/transport/unix_socket.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using namespace tsync_cli_test;

namespace {

/// Write all of `bytes` to a connected socket (blocking), false on an error.
bool write_all(int fd, const std::vector<unsigned char>& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (w <= 0) return false;
    done += static_cast<std::size_t>(w);
  }
  return true;
}

/// Whether the peer closes `fd` within `within` (whatever it sends before).
bool peer_closes(int fd, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  unsigned char buf[4096];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

/// A frame (4-byte little-endian length) around `payload`.
std::vector<unsigned char> framed(const std::vector<unsigned char>& payload, std::uint32_t len) {
  std::vector<unsigned char> f{static_cast<unsigned char>(len), static_cast<unsigned char>(len >> 8),
                               static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 24)};
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

std::vector<unsigned char> encoded(const tsync::probe::message& m) {
  auto v = tsync::probe::encode_to_vector(m);
  std::vector<unsigned char> out;
  if (v)
    for (std::byte b : *v) out.push_back(std::to_integer<unsigned char>(b));
  return framed(out, static_cast<std::uint32_t>(out.size()));
}


}  // namespace

TEST_CASE("agent: memory and threads stay flat over 40,000 connections (it died at ~32,700)", "[threads]") {
  work_dir d("churn_cli");
  const std::string sock = d / "agent.sock";
  const pid_t agent = spawn("agent --no-pin --transport unix:" + sock, d / "agent.log");
  REQUIRE(wait_for_listener(sock, 10000ms));
  auto churn = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto c = tsync::transport::connect_unix(sock, tsync::transport::after(2s));
      REQUIRE(c);
    }
  };
  churn(2000);
  std::this_thread::sleep_for(200ms);
  const long before = proc_status_field(agent, "VmRSS:");
  churn(38000);
  std::this_thread::sleep_for(300ms);
  const long after = proc_status_field(agent, "VmRSS:");
  INFO("agent RSS " << before << " KiB -> " << after << " KiB, log: " << slurp(d.path / "agent.log"));
  REQUIRE(alive(agent));
  CHECK(after - before < 8192);
  CHECK(proc_status_field(agent, "Threads:") <= 64 + 3);
  // Still serves a real sync afterwards.
  auto s = run_tool("sync --transport unix:" + sock + " --count 2 --interval 10ms --probes 20 --quiet --output " +
                    (d / "after"));
  CHECK(s.status == 0);
  stop(agent);
}

TEST_CASE("agent: fd exhaustion (prlimit) backs off with one log line per state change, then serves", "[threads]") {
  work_dir d("emfile_cli");
  const std::string sock = d / "agent.sock";
  const std::string log = d / "agent.log";
  const pid_t agent = [&] {
    auto r = shell("( prlimit --nofile=24 '" + std::string(TSYNC_CLI_PATH) + "' agent --no-pin --transport unix:" +
                   sock + " > '" + log + "' 2>&1 & echo $! )");
    return static_cast<pid_t>(std::stol(r.out));
  }();
  REQUIRE(wait_for_file(sock, 5000ms));
  // Silent clients hold their connections (idle timeout 120 s) until accept runs out of fds.
  // The socket file appears at bind(), before listen(): the first client retries until the
  // agent listens (a loaded machine can preempt it between the two).
  std::vector<tsync::transport::stream_transport> held;
  const auto listen_by = std::chrono::steady_clock::now() + 10s;
  while (held.empty() && std::chrono::steady_clock::now() < listen_by) {
    auto c = tsync::transport::connect_unix(sock, tsync::transport::after(200ms));
    if (c) held.push_back(std::move(*c));
    else std::this_thread::sleep_for(20ms);
  }
  REQUIRE(held.size() == 1);
  for (int i = 1; i < 40; ++i) {
    auto c = tsync::transport::connect_unix(sock, tsync::transport::after(200ms));
    if (c) held.push_back(std::move(*c));
  }
  INFO(held.size() << " clients connected");
  // Wait (up to 20 s on a loaded machine) for the agent to meet the limit, then give a
  // looping accept time to log again before counting.
  std::string text;
  const auto logged_by = std::chrono::steady_clock::now() + 20s;
  while ((text = slurp(log)).find("accept failed") == std::string::npos &&
         std::chrono::steady_clock::now() < logged_by)
    std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(1000ms);
  REQUIRE(alive(agent));
  text = slurp(log);
  INFO(text);
  CHECK(count(text, "accept failed") == 1);  // the old loop logged ~25,000 lines a second
  CHECK(text.find("backing off") != std::string::npos);
  held.clear();
  auto s = run_tool("sync --transport unix:" + sock + " --count 2 --interval 10ms --probes 20 --quiet --output " +
                    (d / "out"));
  CHECK(s.status == 0);
  text = slurp(log);
  CHECK(text.find("accepting connections again") != std::string::npos);
  stop(agent);
}

TEST_CASE("agent: silent hybrid-vsock clients do not keep a sync from connecting", "[threads]") {
  work_dir d("hybrid_cli");
  const std::string sock = d / "vmm.sock";
  const pid_t agent = spawn("agent --no-pin --transport hybrid:" + sock + ":52", d / "agent.log");
  REQUIRE(wait_for_listener(sock, 10000ms));
  std::vector<tsync::transport::stream_transport> silent;
  for (int i = 0; i < 30; ++i) {
    auto c = tsync::transport::connect_unix(sock, tsync::transport::after(1s));
    REQUIRE(c);
    silent.push_back(std::move(*c));
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto s = run_tool("sync --transport hybrid:" + sock + ":52 --connect-timeout 3s --count 2 --interval 10ms "
                    "--probes 20 --quiet --output " + (d / "out"));
  INFO(s.out);
  CHECK(s.status == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  stop(agent);
}

TEST_CASE("agent: restarts after kill -9 over its stale socket, a live agent's socket is kept") {
  work_dir d("restart_cli");
  const std::string sock = d / "agent.sock";
  const pid_t first = spawn("agent --no-pin --transport unix:" + sock, d / "first.log");
  REQUIRE(wait_for_file(sock, 5000ms));
  // A second agent on the same path while the first listens: refused, the file kept.
  auto dup = run_tool("agent --no-pin --transport unix:" + sock + " --connections 1");
  CHECK(dup.status != 0);
  CHECK(dup.out.find("Address already in use") != std::string::npos);
  REQUIRE(fs::exists(sock));
  ::kill(first, SIGKILL);
  REQUIRE(wait_gone(first, 5000ms));
  REQUIRE(fs::exists(sock));  // stale
  const pid_t second = spawn("agent --no-pin --transport unix:" + sock, d / "second.log");
  std::this_thread::sleep_for(300ms);
  INFO(slurp(d.path / "second.log"));
  REQUIRE(alive(second));
  auto s = run_tool("sync --transport unix:" + sock + " --count 2 --interval 10ms --probes 20 --quiet --output " +
                    (d / "out"));
  CHECK(s.status == 0);
  stop(second);
}

TEST_CASE("sync: a responder clock that goes backwards between series starts a new epoch, never an unsorted table") {
  work_dir d("backwards_cli");
  const std::string sock = d / "agent.sock";
  const pid_t agent = spawn("agent --no-pin --transport unix:" + sock + " --step-per-series -1000000000", d / "a.log");
  REQUIRE(wait_for_file(sock, 5000ms));
  const std::string prefix = d / "out";
  auto s = run_tool("sync --transport unix:" + sock + " --count 4 --interval 20ms --probes 20 --output " + prefix);
  INFO(s.out);
  CHECK(s.status == 0);
  CHECK(s.out.find("went backwards") != std::string::npos);
  // The table holds one segment per epoch, each sorted; `correct` reads each with --segment.
  std::ifstream in(prefix + ".vcpu0.csv");
  auto t = tsync::io::parse_table_csv(in);
  REQUIRE(t);
  REQUIRE(t->segments.size() == t->samples.size());
  CHECK(t->epochs.back() == 3);
  for (std::size_t i = 1; i < t->samples.size(); ++i)
    if (t->segments[i] == t->segments[i - 1]) CHECK(t->samples[i - 1].guest_time < t->samples[i].guest_time);
  const std::string g = std::to_string(tsync::raw_ns(t->samples.back().guest_time));
  auto c = shell("echo " + g + " | '" + std::string(TSYNC_CLI_PATH) + "' correct --table '" + prefix +
                 ".vcpu0.csv' --segment 3; echo $?");
  CHECK(c.out.substr(c.out.size() - 2) == "0\n");
  stop(agent);
}

TEST_CASE("every command writing to stdout fails on a write error (/dev/full, closed stdout)") {
  work_dir d("stdout_cli");
  const std::string table = d / "t.csv";
  std::ofstream(table) << "time,offset\n0,100\n1000000,200\n";
  std::string in;
  for (int i = 0; i < 100000; ++i) in += std::to_string(i) + "\n";
  std::ofstream(d / "in.txt") << in;
  const std::string cli = TSYNC_CLI_PATH;
  auto full = shell("'" + cli + "' correct --table '" + table + "' < '" + (d / "in.txt") + "' > /dev/full 2>'" +
                    (d / "err") + "'; echo $?");
  CHECK(full.out != "0\n");
  CHECK(slurp(d.path / "err").find("No space left on device") != std::string::npos);
  auto closed = shell("'" + cli + "' correct --table '" + table + "' < '" + (d / "in.txt") + "' >&- 2>'" +
                      (d / "err2") + "'; echo $?");
  CHECK(closed.out != "0\n");
  CHECK(slurp(d.path / "err2").find("cannot write standard output") != std::string::npos);
  auto version = shell("'" + cli + "' --version > /dev/full 2>/dev/null; echo $?");
  CHECK(version.out != "0\n");
  auto help = shell("'" + cli + "' sync --help > /dev/full 2>/dev/null; echo $?");
  CHECK(help.out != "0\n");
}

TEST_CASE("sync: a full disk is a non-zero exit naming the file and the errno text (tmpfs, root only)") {
  work_dir d("fulldisk_cli");
  const std::string mnt = d / "small";
  fs::create_directories(mnt);
  if (::geteuid() != 0 || ::mount("tsync-test", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("skipped: mounting a tmpfs needs root");
    return;
  }
  // Fill it, leaving a few bytes.
  {
    std::ofstream fill(mnt + "/fill", std::ios::binary);
    std::string block(4096, 'x');
    for (int i = 0; i < 64 && fill; ++i) fill << block;
  }
  const std::string sock = d / "agent.sock";
  const pid_t agent = spawn("agent --no-pin --transport unix:" + sock, d / "a.log");
  REQUIRE(wait_for_file(sock, 5000ms));
  auto s = run_tool("sync --transport unix:" + sock + " --count 3 --interval 10ms --probes 20 --quiet --output " + mnt +
                    "/out");
  INFO(s.out);
  CHECK(s.status != 0);
  CHECK(s.out.find("No space left on device") != std::string::npos);
  CHECK(s.out.find(mnt + "/out") != std::string::npos);
  // No empty final file is left behind as if it were a result.
  for (const auto& e : fs::directory_iterator(mnt)) {
    if (e.path().filename() == "fill") continue;
    INFO(e.path());
    CHECK((e.path().extension() == ".partial" || fs::file_size(e.path()) > 0));
  }
  stop(agent);
  ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST_CASE("sync: kill -9 mid-session keeps every completed series on disk") {
  work_dir d("kill_cli");
  const std::string sock = d / "agent.sock";
  const pid_t agent = spawn("agent --no-pin --transport unix:" + sock, d / "a.log");
  REQUIRE(wait_for_file(sock, 5000ms));
  const std::string prefix = d / "out";
  const pid_t sync = spawn("sync --transport unix:" + sock + " --duration 60s --interval 50ms --probes 20 --output " +
                           prefix, d / "s.log");
  std::this_thread::sleep_for(1500ms);
  REQUIRE(alive(sync));
  ::kill(sync, SIGKILL);
  REQUIRE(wait_gone(sync, 5000ms));
  const std::string log = slurp(prefix + ".series.csv.partial");
  std::size_t lines = 0;
  for (char c : log) lines += c == '\n' ? 1u : 0u;
  INFO(log);
  CHECK(lines >= 5);  // header + at least four series (about 25 ran)
  CHECK(log.back() == '\n');
  stop(agent);
}
TEST_CASE("agent: garbage and oversized or half frames and protocol abuse and slow drips never stop it serving") {
  // The modes of the audit's hostile clients, against the agent process; every
  // abusive connection must be closed by the agent (none left hanging) and a
  // real sync must still work -- also while slow drips are in progress.
  work_dir d("hostile_cli");
  const std::string sock = d / "agent.sock";
  const pid_t agent = spawn("agent --no-pin --transport unix:" + sock, d / "agent.log");
  REQUIRE(wait_for_file(sock, 5000ms));
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;  // xorshift64: reproducible garbage
  // Its left shifts drop the high bits by design: mask them off first (no unsigned-shift-base wrap).
  auto shl = [](std::uint64_t v, unsigned k) { return (v & (~std::uint64_t{0} >> k)) << k; };
  auto next_byte = [&x, &shl] {
    x ^= shl(x, 13);
    x ^= x >> 7;
    x ^= shl(x, 17);
    return static_cast<unsigned char>(x >> 56);
  };
  auto garbage = [&](std::size_t n) {
    std::vector<unsigned char> g(n);
    for (auto& b : g) b = next_byte();
    return g;
  };
  using tsync::probe::message;
  using namespace tsync::probe;
  std::vector<std::pair<std::string, std::vector<unsigned char>>> modes;
  for (int i = 0; i < 100; ++i) modes.emplace_back("raw garbage", garbage(64));
  for (int i = 0; i < 100; ++i) {
    auto g = garbage(1 + static_cast<std::size_t>(next_byte()));
    modes.emplace_back("framed garbage", framed(g, static_cast<std::uint32_t>(g.size())));
  }
  for (std::uint32_t len : {65537u, 0x7FFFFFFFu, 0xFFFFFFFFu}) modes.emplace_back("oversized frame", framed({}, len));
  auto start = encoded(message{start_msg{7, 0, 10, 0}});
  auto probe = encoded(message{probe_msg{7, 3}});
  auto dup = start;
  dup.insert(dup.end(), probe.begin(), probe.end());
  dup.insert(dup.end(), probe.begin(), probe.end());
  // Protocol 2: a start before a hello is refused without ending the
  // connection (the client may still say hello); the lie comes after one.
  auto lie = encoded(message{hello_msg{hello_role::initiator, tsync::probe::local_identity("mono_raw", false, 1)}});
  lie.insert(lie.end(), dup.begin(), dup.end());
  auto end_lie = encoded(message{end_msg{7, 1000}});  // more probes than the start announced
  lie.insert(lie.end(), end_lie.begin(), end_lie.end());
  modes.emplace_back("end claiming more probes than announced", lie);
  auto replies = encoded(message{reply_msg{7, 3, 42}});
  modes.emplace_back("responder-role messages from a client, then garbage", [&] {
    auto v = replies;
    auto g = framed(garbage(40), 40);
    v.insert(v.end(), g.begin(), g.end());
    return v;
  }());
  std::size_t tried = 0, closed = 0, sent = 0;
  for (const auto& [what, bytes] : modes) {
    auto c = tsync::transport::connect_unix(sock, tsync::transport::after(2s));
    REQUIRE(c);
    ++tried;
    if (write_all(c->write_fd(), bytes)) ++sent;
    if (peer_closes(c->read_fd(), 3000ms)) ++closed;
    else WARN("the agent kept a connection open after: " << what);
  }
  // Half frames: a length, a few bytes, then the client goes away.
  for (int i = 0; i < 50; ++i) {
    auto c = tsync::transport::connect_unix(sock, tsync::transport::after(2s));
    REQUIRE(c);
    ++tried;
    if (write_all(c->write_fd(), framed(garbage(10), 1000))) ++sent;
  }
  INFO("tried " << tried << ", written " << sent << ", closed by the agent " << closed << " of " << modes.size());
  CHECK(closed == modes.size());
  REQUIRE(alive(agent));
  // Slow drips: 8 clients send a valid start one byte every 20 ms while a real sync runs.
  std::vector<std::jthread> drips;
  for (int i = 0; i < 8; ++i) {
    drips.emplace_back([&, i](std::stop_token st) {
      auto c = tsync::transport::connect_unix(sock, tsync::transport::after(2s));
      if (!c) return;
      auto m = encoded(message{start_msg{static_cast<std::uint32_t>(100 + i), 0, 10, 0}});
      for (unsigned char b : m) {
        if (st.stop_requested() || !write_all(c->write_fd(), {b})) return;
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  auto s = run_tool("sync --transport unix:" + sock + " --count 3 --interval 10ms --probes 20 --quiet --output " +
                    (d / "out"));
  INFO(s.out << slurp(d.path / "agent.log"));
  CHECK(s.status == 0);
  drips.clear();
  CHECK(alive(agent));
  CHECK(proc_status_field(agent, "Threads:") <= 64 + 3);
  stop(agent);
}
#endif
