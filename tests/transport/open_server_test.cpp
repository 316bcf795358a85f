// transport/open.hpp (the spec grammar, open with retry, listeners with stale
// socket recovery) and transport/server.hpp (the bounded worker pool with its
// connection cap, handshakes off the accept path, flat memory under churn).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"
#include "tsync/transport/open.hpp"
#include "tsync/transport/server.hpp"

using namespace std::chrono_literals;
using namespace tsync::transport;
using tsync::errc;

namespace {

using tsync::test::temp_dir;


/// What a process killed with SIGKILL leaves behind: a bound socket file, no listener.
void make_stale_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  ::close(fd);
}

/// Resident set size of this process, in KiB.
long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

/// Whether the peer closed `t` (a receive ends in peer_closed before `d`).
bool closed_by_peer(stream_transport& t, std::chrono::milliseconds within) {
  std::vector<std::byte> buf;
  auto r = t.receive(buf, after(within));
  return !r && r.error() == tsync::make_error_code(errc::peer_closed);
}

}  // namespace

TEST_CASE("parse_spec reads every documented transport form") {
  auto u = parse_spec("unix:/run/a.sock");
  REQUIRE(u);
  CHECK(u->k == spec::kind::unix_socket);
  CHECK(u->path == "/run/a.sock");
  CHECK(u->connection_oriented());
  auto t = parse_spec("tcp:::1:7000");
  REQUIRE(t);
  CHECK(t->host == "::1");
  CHECK(t->port == 7000);
  auto v = parse_spec("vsock:any:5000");
  REQUIRE(v);
  CHECK(v->cid == vsock_cid_any);
  CHECK(v->port == 5000);
  auto v3 = parse_spec("vsock:3:5000");
  REQUIRE(v3);
  CHECK(v3->cid == 3);
  auto h = parse_spec("hybrid:/run/fc.vsock:52");
  REQUIRE(h);
  CHECK(h->path == "/run/fc.vsock");
  CHECK(h->port == 52);
  auto f = parse_spec("fifo:/tmp/x");
  REQUIRE(f);
  CHECK_FALSE(f->connection_oriented());
  auto c = parse_spec("chardev:/dev/vport0p1");
  REQUIRE(c);
  CHECK(c->k == spec::kind::chardev);
}

TEST_CASE("parse_spec refuses malformed specs with a message naming the form") {
  for (const char* bad : {"", "unix", "unix:", "tcp:host", "tcp:h:70000", "tcp:h:-1", "tcp::5", "vsock:x:5",
                          "vsock:3:", "hybrid:/p", "hybrid:/p:port", "udp:1.2.3.4:5", "fifo:"}) {
    INFO(bad);
    auto r = parse_spec(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
    CHECK_FALSE(r.error().what().empty());
  }
  CHECK(parse_spec("tcp:h:70000").error().what() == "expected tcp:HOST:PORT");
  CHECK(parse_spec("udp:x").error().what().find("unknown transport kind 'udp'") != std::string::npos);
}

TEST_CASE("open_with_retry waits for a responder that starts late") {
  temp_dir d;
  const std::string path = d / "late.sock";
  auto s = parse_spec("unix:" + path);
  REQUIRE(s);
  std::atomic<bool> late_ok{false};
  std::jthread late([&] {
    std::this_thread::sleep_for(200ms);
    auto l = listener::listen(*s);
    if (!l) return;
    auto p = l->accept(after(5s));
    if (!p) return;
    auto t = std::move(*p).finish(after(1s));
    if (!t) return;
    late_ok = true;
    std::vector<std::byte> b;
    (void)t->receive(b, after(2s));
  });
  auto t = open_with_retry(*s, after(5s));
  REQUIRE(t);
  t = open_with_retry(*parse_spec("unix:" + path), after(1ms));  // closes the first: the thread ends
  late.join();
  CHECK(late_ok.load());
  // A hard error is not retried.
  auto bad = open_with_retry(*parse_spec("unix:/" + std::string(200, 'x')), after(5s));  // too long for sun_path
  REQUIRE_FALSE(bad);
  CHECK_FALSE(not_there_yet(bad.error()));
}

TEST_CASE("listener replaces a stale socket file after kill -9, and nothing else") {
  temp_dir d;
  const std::string path = d / "agent.sock";
  make_stale_socket(path);
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  REQUIRE(S_ISSOCK(st.st_mode));
  // Without recovery the old behaviour: address in use.
  CHECK(unix_listener::listen(path).error() == std::errc::address_in_use);
  auto l = listener::listen(*parse_spec("unix:" + path));
  REQUIRE(l);
  // A live listener is never replaced.
  auto second = listener::listen(*parse_spec("unix:" + path));
  REQUIRE_FALSE(second);
  CHECK(second.error() == std::errc::address_in_use);
  auto t = connect_unix(path, after(1s));
  CHECK(t);
  // A regular file is never removed.
  const std::string file = d / "not-a-socket";
  std::ofstream(file) << "keep me";
  auto third = listener::listen(*parse_spec("unix:" + file));
  REQUIRE_FALSE(third);
  CHECK(third.error() == std::errc::address_in_use);
  CHECK(std::filesystem::file_size(file) == 7);
  // Hybrid (the VMM's socket path) recovers the same way.
  const std::string hpath = d / "vmm.sock";
  make_stale_socket(hpath);
  CHECK(listener::listen(*parse_spec("hybrid:" + hpath + ":52")));
}

TEST_CASE("server: the connection cap refuses extra connections with one log line per state change",
          "[threads]") {
  temp_dir d;
  const std::string path = d / "cap.sock";
  auto l = listener::listen(*parse_spec("unix:" + path));
  REQUIRE(l);
  std::mutex mu;
  std::vector<std::string> log;
  server_options o;
  o.max_connections = 2;
  o.poll = 20ms;
  o.log = [&](const std::string& s) {
    std::lock_guard lk(mu);
    log.push_back(s);
  };
  // Handlers hold their connection until the server stops.
  server srv(std::move(*l), [](stream_transport&, std::stop_token st) {
    while (!st.stop_requested()) std::this_thread::sleep_for(5ms);
  }, o);
  std::stop_source stop;
  std::jthread runner([&] { (void)srv.run(stop.get_token()); });
  auto a = connect_unix(path, after(1s));
  auto b = connect_unix(path, after(1s));
  REQUIRE(a);
  REQUIRE(b);
  for (int i = 0; i < 100 && srv.active() < 2; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(srv.active() == 2);
  for (int i = 0; i < 5; ++i) {
    auto extra = connect_unix(path, after(1s));
    REQUIRE(extra);
    CHECK(closed_by_peer(*extra, 2000ms));
  }
  CHECK(srv.stats().refused == 5);
  CHECK_FALSE(closed_by_peer(*a, 50ms));  // the served ones stay open
  stop.request_stop();
  runner.join();
  std::lock_guard lk(mu);
  REQUIRE(log.size() == 1);
  CHECK(log[0].find("connection cap reached (2)") != std::string::npos);
}

TEST_CASE("server: silent hybrid-vsock clients do not block a legitimate handshake", "[threads]") {
  temp_dir d;
  const std::string path = d / "vmm.sock";
  auto l = listener::listen(*parse_spec("hybrid:" + path + ":52"));
  REQUIRE(l);
  server_options o;
  o.handshake_timeout = 3s;
  o.poll = 20ms;
  std::atomic<int> served{0};
  server srv(std::move(*l), [&](stream_transport&, std::stop_token) { ++served; }, o);
  std::stop_source stop;
  std::jthread runner([&] { (void)srv.run(stop.get_token()); });
  // Ten clients connect and never send their CONNECT line.
  std::vector<stream_transport> silent;
  for (int i = 0; i < 10; ++i) {
    auto s = connect_unix(path, after(1s));
    REQUIRE(s);
    silent.push_back(std::move(*s));
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto h = connect_hybrid_vsock(path, 52, after(2s));
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(h);
  CHECK(took < 1s);  // the old accept loop read each silent client's line in turn
  CHECK(h->assigned_port >= 1073741824u);
  stop.request_stop();
  runner.join();
  CHECK(served.load() == 1);
}

TEST_CASE("server: backs off on EMFILE with one log line per state change, then recovers", "[threads]") {
  temp_dir d;
  const std::string path = d / "emfile.sock";
  auto l = listener::listen(*parse_spec("unix:" + path));
  REQUIRE(l);
  std::mutex mu;
  std::vector<std::string> log;
  server_options o;
  o.poll = 20ms;
  o.backoff = 20ms;
  o.log = [&](const std::string& s) {
    std::lock_guard lk(mu);
    log.push_back(s);
  };
  std::atomic<int> served{0};
  server srv(std::move(*l), [&](stream_transport&, std::stop_token) { ++served; }, o);
  std::stop_source stop;
  std::jthread runner([&] { (void)srv.run(stop.get_token()); });
  // Use up the descriptors: the connecting side's sockets plus /dev/null copies up to the limit.
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  std::vector<int> hog;
  rlimit low = old;
  low.rlim_cur = 64;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  for (;;) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    hog.push_back(fd);
  }
  REQUIRE(!hog.empty());
  ::close(hog.back());
  hog.pop_back();
  auto c = connect_unix(path, after(1s));  // the last descriptor; the server cannot accept it
  REQUIRE(c);
  std::this_thread::sleep_for(300ms);  // ~15 backoff turns
  {
    std::lock_guard lk(mu);
    REQUIRE(log.size() == 1);
    CHECK(log[0].find("backing off") != std::string::npos);
  }
  CHECK(srv.stats().accept_errors >= 3);
  CHECK(srv.stats().accept_errors < 40);  // no spinning
  for (int fd : hog) ::close(fd);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  for (int i = 0; i < 200 && served.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(served.load() == 1);
  stop.request_stop();
  runner.join();
  std::lock_guard lk(mu);
  REQUIRE(log.size() == 2);
  CHECK(log[1] == "accepting connections again");
}

TEST_CASE("server: memory and threads stay flat over 40,000 connections", "[threads]") {
  temp_dir d;
  const std::string path = d / "churn.sock";
  auto l = listener::listen(*parse_spec("unix:" + path));
  REQUIRE(l);
  server_options o;
  o.max_connections = 8;
  std::atomic<int> log_lines{0};
  o.log = [&](const std::string&) { ++log_lines; };
  std::atomic<std::uint64_t> served{0};
  server srv(std::move(*l), [&](stream_transport& t, std::stop_token) {
    std::vector<std::byte> b;
    (void)t.receive(b, after(1s));
    ++served;
  }, o);
  std::stop_source stop;
  std::jthread runner([&] { (void)srv.run(stop.get_token()); });
  auto churn = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto c = connect_unix(path, after(2s));
      REQUIRE(c);
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  churn(2000);
  const long before = rss_kib();
  churn(38000);
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  // Churn at the cap flaps between capped and not: at most two lines a second.
  CHECK(log_lines.load() <= 2 * (secs + 1));
  for (int i = 0; i < 500 && (srv.active() > 0 || srv.stats().accepted + srv.stats().refused < 40000); ++i)
    std::this_thread::sleep_for(10ms);
  const long after_churn = rss_kib();
  INFO("RSS " << before << " KiB -> " << after_churn << " KiB");
  CHECK(after_churn - before < 4096);
  const auto st = srv.stats();
  CHECK(st.threads <= 8);
  CHECK(st.accepted + st.refused == 40000);
  stop.request_stop();
  runner.join();
}
