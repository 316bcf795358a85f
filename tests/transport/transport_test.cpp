// Every transport moves real bytes between two processes (or threads) on this
// machine: a probe exchange runs over it with both clocks CLOCK_MONOTONIC_RAW,
// so each series must bracket 0. Plus the failure behaviour of the framing.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"
#include "probe/test_support.hpp"
#include "tsync/probe/exchange.hpp"
#include "tsync/transport.hpp"

using namespace std::chrono_literals;
using namespace tsync::transport;
using tsync::errc;
using tsync::test::raw_clock;

namespace {

using tsync::test::temp_dir;


/// The responder side run in a forked child: serve until bye, exit 0 on success.
template <class T>
int serve_child(T& t) {
  raw_clock c;
  auto st = tsync::probe::serve(t, c, tsync::probe::responder_options{}, after(30s));
  return st.has_value() && st->ended == tsync::probe::serve_end::bye && st->series_completed == 3 ? 0 : 3;
}

/// The initiator side: three series, each must bracket a zero offset.
template <class T>
void run_three_series(T& t) {
  raw_clock c;
  for (std::uint32_t s = 1; s <= 3; ++s) {
    tsync::probe::series_config cfg;
    cfg.series_id = s;
    cfg.vcpu = s - 1;
    cfg.deadline = after(10s);
    cfg.per_probe_timeout = 1s;
    auto r = tsync::probe::run_series(t, c, cfg);
    INFO("series " << s << " error " << r.error.message());
    REQUIRE(r.ok());
    REQUIRE(r.probes.size() == 339);
    bool all_causal = true;
    for (const auto& p : r.probes) all_causal = all_causal && p.t1 <= p.g && p.g <= p.t2;
    CHECK(all_causal);
    const auto h = tsync::test::interval_of(r.probes);
    CHECK(h.lo <= 0);
    CHECK(0 <= h.hi);
  }
  CHECK(tsync::probe::send_bye(t, after(1s)).has_value());
}

void message_roundtrip(stream_transport& a, stream_transport& b) {
  std::vector<std::byte> msg(max_message_size);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::byte>(i * 7 + 3);
  bool sent = false;
  std::thread writer([&] { sent = a.send(msg, after(5s)).has_value(); });
  std::vector<std::byte> buf;
  auto n = b.receive(buf, after(5s));
  writer.join();
  CHECK(sent);
  REQUIRE(n.has_value());
  CHECK(*n == max_message_size);
  CHECK(buf == msg);
}

}  // namespace

TEST_CASE("a probe exchange over a socketpair between two processes brackets zero", "[transport][process]") {
  auto p = make_socketpair();
  REQUIRE(p.has_value());
  const pid_t child = tsync::test::fork_child([&] {
    p->first = stream_transport{};
    return serve_child(p->second);
  });
  REQUIRE(child > 0);
  p->second = stream_transport{};
  run_three_series(p->first);
  CHECK(tsync::test::wait_child(child) == 0);
}

TEST_CASE("a probe exchange over a Unix socket between two processes brackets zero", "[transport][process]") {
  temp_dir dir;
  const auto path = dir / "probe.sock";
  auto l = unix_listener::listen(path);
  REQUIRE(l.has_value());
  const pid_t child = tsync::test::fork_child([&] {
    auto t = connect_unix(path, after(5s));
    if (!t) return 2;
    return serve_child(*t);
  });
  REQUIRE(child > 0);
  auto t = l->accept(after(5s));
  REQUIRE(t.has_value());
  run_three_series(*t);
  CHECK(tsync::test::wait_child(child) == 0);
}

TEST_CASE("a probe exchange over TCP loopback between two processes brackets zero", "[transport][process]") {
  auto l = tcp_listener::listen("127.0.0.1", 0);
  REQUIRE(l.has_value());
  const std::uint16_t port = l->port();
  REQUIRE(port != 0);
  const pid_t child = tsync::test::fork_child([&] {
    auto t = connect_tcp("127.0.0.1", port, after(5s));
    if (!t) return 2;
    return serve_child(*t);
  });
  REQUIRE(child > 0);
  auto t = l->accept(after(5s));
  REQUIRE(t.has_value());
  run_three_series(*t);
  CHECK(tsync::test::wait_child(child) == 0);
}

TEST_CASE("a probe exchange over a pair of named pipes between two processes brackets zero", "[transport][process]") {
  temp_dir dir;
  const auto to_resp = dir / "to_responder";
  const auto to_init = dir / "to_initiator";
  REQUIRE(make_fifo(to_resp).has_value());
  REQUIRE(make_fifo(to_init).has_value());
  const pid_t child = tsync::test::fork_child([&] {
    auto t = open_fifo_pair(to_resp, to_init, after(5s));
    if (!t) return 2;
    return serve_child(*t);
  });
  REQUIRE(child > 0);
  auto t = open_fifo_pair(to_init, to_resp, after(5s));
  INFO((t ? std::string("ok") : t.error().message()));
  REQUIRE(t.has_value());
  run_three_series(*t);
  CHECK(tsync::test::wait_child(child) == 0);
}

TEST_CASE("a probe exchange over a raw pseudo-terminal standing in for a virtio-serial port brackets zero",
          "[transport][process]") {
  unique_fd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  REQUIRE(master.valid());
  REQUIRE(::grantpt(master.get()) == 0);
  REQUIRE(::unlockpt(master.get()) == 0);
  const std::string slave_name = ::ptsname(master.get());
  auto dev = open_chardev(slave_name);  // the "guest" end, put into raw mode
  REQUIRE(dev.has_value());
  auto host = adopt_chardev(std::move(master));
  REQUIRE(host.has_value());
  const pid_t child = tsync::test::fork_child([&] {
    *host = stream_transport{};
    return serve_child(*dev);
  });
  REQUIRE(child > 0);
  *dev = stream_transport{};
  run_three_series(*host);
  CHECK(tsync::test::wait_child(child) == 0);
}

TEST_CASE("a probe exchange over the hybrid vsock handshake brackets zero", "[transport][process]") {
  temp_dir dir;
  const auto path = dir / "v.sock";
  auto acc = hybrid_vsock_acceptor::listen(path, 1000);
  REQUIRE(acc.has_value());
  const pid_t child = tsync::test::fork_child([&] {
    auto c = connect_hybrid_vsock(path, 5201, after(5s));
    if (!c || c->assigned_port != 1000) return 2;
    return serve_child(c->transport);
  });
  REQUIRE(child > 0);
  auto a = acc->accept(after(5s));
  REQUIRE(a.has_value());
  CHECK(a->requested_port == 5201);
  CHECK(a->assigned_port == 1000);
  run_three_series(a->transport);
  CHECK(tsync::test::wait_child(child) == 0);
}

TEST_CASE("vsock carries a probe exchange where a local vsock peer is reachable", "[transport][vsock]") {
  auto l = vsock_listener::listen(0xFFFFFFFFu /* any port */, vsock_cid_local);
  const auto skip = [](const std::error_code& ec) {
    return ec == make_error_code(errc::unsupported) || ec == std::errc::no_such_device ||
           ec == std::errc::connection_refused || ec == std::errc::timed_out || ec == make_error_code(errc::timed_out) ||
           ec == std::errc::address_not_available || ec == std::errc::connection_reset;
  };
  if (!l) {
    WARN("vsock skipped: cannot listen on the local CID: " << l.error().message());
    CHECK(skip(l.error()));
    return;
  }
  const std::uint32_t port = l->port();
  std::thread responder([&] {
    auto t = l->accept(after(2s));
    if (!t) return;
    raw_clock c;
    (void)tsync::probe::serve(*t, c, tsync::probe::responder_options{}, after(20s));
  });
  auto t = connect_vsock(vsock_cid_local, port, after(1s));
  if (!t) {
    responder.join();
    WARN("vsock skipped: no local vsock peer: " << t.error().message());
    CHECK(skip(t.error()));
    return;
  }
  raw_clock c;
  tsync::probe::series_config cfg;
  cfg.deadline = after(10s);
  auto r = tsync::probe::run_series(*t, c, cfg);
  REQUIRE(r.ok());
  const auto h = tsync::test::interval_of(r.probes);
  CHECK(h.lo <= 0);
  CHECK(0 <= h.hi);
  CHECK(tsync::probe::send_bye(*t, after(1s)).has_value());
  responder.join();
}

TEST_CASE("the largest message crosses every stream transport intact", "[transport]") {
  auto p = make_socketpair();
  REQUIRE(p.has_value());
  message_roundtrip(p->first, p->second);
  temp_dir dir;
  REQUIRE(make_fifo(dir / "a").has_value());
  REQUIRE(make_fifo(dir / "b").has_value());
  auto fa = open_fifo_pair(dir / "a", dir / "b", after(1s));  // the peer is not there yet
  REQUIRE_FALSE(fa.has_value());
  CHECK(fa.error() == make_error_code(errc::timed_out));
  tsync::expected<stream_transport, std::error_code> x = tsync::unexpected(std::error_code{});
  std::thread opener([&] { x = open_fifo_pair(dir / "b", dir / "a", after(5s)); });
  auto y = open_fifo_pair(dir / "a", dir / "b", after(5s));
  opener.join();
  REQUIRE(x.has_value());
  REQUIRE(y.has_value());
  message_roundtrip(*x, *y);
  message_roundtrip(*y, *x);
}

TEST_CASE("a receive with nothing to read ends with timed_out at its deadline", "[transport]") {
  auto p = make_socketpair();
  REQUIRE(p.has_value());
  std::vector<std::byte> buf;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = p->first.receive(buf, after(80ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == make_error_code(errc::timed_out));
  CHECK(took >= 80ms);
  CHECK(took < 2s);
}

TEST_CASE("a frame split across a timeout is completed by the next receive", "[transport]") {
  auto p = make_socketpair();
  REQUIRE(p.has_value());
  const int fd = p->first.write_fd();
  const unsigned char part1[] = {5, 0, 0, 0, 'h', 'e'};
  const unsigned char part2[] = {'l', 'l', 'o'};
  REQUIRE(::write(fd, part1, sizeof part1) == static_cast<ssize_t>(sizeof part1));
  std::vector<std::byte> buf;
  auto r = p->second.receive(buf, after(30ms));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == make_error_code(errc::timed_out));
  REQUIRE(::write(fd, part2, sizeof part2) == static_cast<ssize_t>(sizeof part2));
  r = p->second.receive(buf, after(1s));
  REQUIRE(r.has_value());
  CHECK(*r == 5);
  CHECK(std::string(reinterpret_cast<const char*>(buf.data()), buf.size()) == "hello");
}

TEST_CASE("a peer that closes gives peer_closed on receive and on send without SIGPIPE", "[transport]") {
  {
    auto p = make_socketpair();
    REQUIRE(p.has_value());
    const std::byte one[1] = {std::byte{1}};
    REQUIRE(p->second.send(one, after(1s)).has_value());
    p->second = stream_transport{};
    std::vector<std::byte> buf;
    auto r = p->first.receive(buf, after(1s));  // the frame sent before closing still arrives
    REQUIRE(r.has_value());
    r = p->first.receive(buf, after(1s));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == make_error_code(errc::peer_closed));
    auto s = p->first.send(one, after(1s));
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error() == make_error_code(errc::peer_closed));
  }
  {
    temp_dir dir;
    REQUIRE(make_fifo(dir / "a").has_value());
    REQUIRE(make_fifo(dir / "b").has_value());
    tsync::expected<stream_transport, std::error_code> x = tsync::unexpected(std::error_code{});
    std::thread opener([&] { x = open_fifo_pair(dir / "b", dir / "a", after(5s)); });
    auto y = open_fifo_pair(dir / "a", dir / "b", after(5s));
    opener.join();
    REQUIRE(x.has_value());
    REQUIRE(y.has_value());
    *x = stream_transport{};
    std::vector<std::byte> buf;
    auto r = y->receive(buf, after(1s));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == make_error_code(errc::peer_closed));
    const std::byte one[1] = {std::byte{1}};
    auto s = y->send(one, after(1s));  // a write to a FIFO without reader: EPIPE, no signal
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error() == make_error_code(errc::peer_closed));
  }
}

TEST_CASE("a frame length above the limit is oversized and leaves the transport broken", "[transport]") {
  auto p = make_socketpair();
  REQUIRE(p.has_value());
  const unsigned char len[4] = {0x01, 0x00, 0x01, 0x00};  // 65537 bytes announced
  REQUIRE(::write(p->first.write_fd(), len, 4) == 4);
  std::vector<std::byte> buf;
  auto r = p->second.receive(buf, after(1s));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == make_error_code(errc::oversized));
  CHECK(p->second.broken());
  auto again = p->second.receive(buf, after(1s));
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error() == make_error_code(errc::io_error));
  std::vector<std::byte> big(max_message_size + 1);
  auto s = p->first.send(big, after(1s));
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error() == make_error_code(errc::oversized));
}

TEST_CASE("frames of every size up to the limit arrive whole when they are queued back to back", "[transport]") {
  // The receive buffer starts small and grows only for a large frame: small
  // frames around two frames at the limit, all written before the first read.
  auto p = make_socketpair();
  REQUIRE(p.has_value());
  const std::vector<std::size_t> sizes = {10, max_message_size, 3, 0, 4095, 4096, max_message_size, 5000, 1};
  std::vector<std::vector<std::byte>> msgs;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    std::vector<std::byte> m(sizes[k]);
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = static_cast<std::byte>(i * 13 + k);
    msgs.push_back(std::move(m));
  }
  bool all_sent = true;
  std::thread writer([&] {
    for (const auto& m : msgs) all_sent = all_sent && p->first.send(m, after(5s)).has_value();
  });
  std::this_thread::sleep_for(50ms);  // let the writer queue as much as the socket holds
  std::vector<std::byte> buf;
  for (std::size_t k = 0; k < msgs.size(); ++k) {
    auto n = p->second.receive(buf, after(5s));
    INFO("frame " << k << " of " << sizes[k] << " bytes");
    REQUIRE(n.has_value());
    CHECK(*n == sizes[k]);
    CHECK(buf == msgs[k]);
  }
  writer.join();
  CHECK(all_sent);
  p->first = stream_transport{};
  auto end = p->second.receive(buf, after(1s));
  REQUIRE_FALSE(end.has_value());
  CHECK(end.error() == make_error_code(errc::peer_closed));
}

TEST_CASE("a send that cannot drain before its deadline times out", "[transport]") {
  auto p = make_socketpair();
  REQUIRE(p.has_value());
  std::vector<std::byte> msg(max_message_size);
  tsync::expected<void, std::error_code> s;
  for (int i = 0; i < 1000; ++i) {  // nobody reads: the socket buffer fills up
    s = p->first.send(msg, after(20ms));
    if (!s) break;
  }
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error() == make_error_code(errc::timed_out));
}

TEST_CASE("connecting to nothing fails with the operating system's error", "[transport]") {
  temp_dir dir;
  auto u = connect_unix(dir / "missing.sock", after(1s));
  REQUIRE_FALSE(u.has_value());
  CHECK(u.error() == std::errc::no_such_file_or_directory);
  auto l = tcp_listener::listen("127.0.0.1", 0);
  REQUIRE(l.has_value());
  const auto port = l->port();
  *l = tcp_listener{};  // closed again: nobody listens on that port
  auto t = connect_tcp("127.0.0.1", port, after(1s));
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error() == std::errc::connection_refused);
  auto bad = connect_tcp("localhost", 1, after(1s));  // names are not looked up
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error() == make_error_code(errc::invalid_argument));
  auto longpath = connect_unix(std::string(200, 'x'), after(1s));
  REQUIRE_FALSE(longpath.has_value());
  CHECK(longpath.error() == make_error_code(errc::invalid_argument));
}

TEST_CASE("the fd helpers return an empty expected or the operating system's error", "[transport]") {
  temp_dir dir;
  // make_fifo: a new FIFO, the same FIFO again, a regular file in the way.
  REQUIRE(make_fifo(dir / "f").has_value());
  CHECK(make_fifo(dir / "f").has_value());
  const int plain = ::open((dir / "plain").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(plain >= 0);
  ::close(plain);
  auto clash = make_fifo(dir / "plain");
  REQUIRE_FALSE(clash.has_value());
  CHECK(clash.error() == std::errc::file_exists);

  // set_nonblocking, set_nodelay and make_raw on a pipe.
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  const unique_fd r(p[0]), w(p[1]);
  REQUIRE(detail::set_nonblocking(r.get()).has_value());
  CHECK((::fcntl(r.get(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK(detail::set_nonblocking(r.get()).has_value());  // already non-blocking
  auto badfd = detail::set_nonblocking(-1);
  REQUIRE_FALSE(badfd.has_value());
  CHECK(badfd.error() == std::errc::bad_file_descriptor);
  auto nodelay = detail::set_nodelay(w.get());
  REQUIRE_FALSE(nodelay.has_value());
  CHECK(nodelay.error() == std::errc::not_a_socket);
  CHECK(make_raw(r.get()).has_value());  // not a terminal: nothing to do

  // remove_stale_socket: nothing there, a regular file, a socket with a listener.
  CHECK(detail::remove_stale_socket(dir / "none.sock").has_value());
  auto notsock = detail::remove_stale_socket(dir / "plain");
  REQUIRE_FALSE(notsock.has_value());
  CHECK(notsock.error() == std::errc::address_in_use);
  CHECK(std::filesystem::exists(dir / "plain"));
  auto l = unix_listener::listen(dir / "live.sock");
  REQUIRE(l.has_value());
  auto live = detail::remove_stale_socket(dir / "live.sock");
  REQUIRE_FALSE(live.has_value());
  CHECK(live.error() == std::errc::address_in_use);
  CHECK(std::filesystem::exists(dir / "live.sock"));

  // write_all: the whole text to a connected peer, then peer_closed once it is gone.
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  const unique_fd a(sv[0]);
  unique_fd b(sv[1]);
  REQUIRE(detail::write_all(a.get(), "hello\n", after(1s)).has_value());
  auto line = detail::read_line(b.get(), 64, after(1s));
  REQUIRE(line.has_value());
  CHECK(*line == "hello");
  b = unique_fd{};
  auto gone = detail::write_all(a.get(), std::string(1 << 20, 'x'), after(2s));
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error() == make_error_code(errc::peer_closed));
}

TEST_CASE("a Unix listener removes its socket file and abstract names work", "[transport]") {
  temp_dir dir;
  const auto path = dir / "x.sock";
  {
    auto l = unix_listener::listen(path);
    REQUIRE(l.has_value());
    CHECK(std::filesystem::exists(path));
    auto again = unix_listener::listen(path);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error() == std::errc::address_in_use);
  }
  CHECK_FALSE(std::filesystem::exists(path));
  const std::string abstract = "@tsync-test-" + std::to_string(::getpid());
  auto l = unix_listener::listen(abstract);
  REQUIRE(l.has_value());
  auto c = connect_unix(abstract, after(1s));
  REQUIRE(c.has_value());
  auto s = l->accept(after(1s));
  REQUIRE(s.has_value());
  message_roundtrip(*c, *s);
}

TEST_CASE("the hybrid vsock handshake rejects bad answers and bad requests", "[transport]") {
  temp_dir dir;
  const auto path = dir / "vmm.sock";
  auto l = unix_listener::listen(path);
  REQUIRE(l.has_value());
  // A fake VMM answering each connection with a scripted line.
  const auto fake_vmm = [&](std::string answer) {
    std::string request;
    std::thread vmm([&, answer] {
      auto fd = l->accept_fd(after(5s));
      if (!fd) return;
      auto line = tsync::transport::detail::read_line(fd->get(), 64, after(5s));
      if (line) request = *line;
      if (!answer.empty()) (void)tsync::transport::detail::write_all(fd->get(), answer, after(1s));
    });
    auto c = connect_hybrid_vsock(path, 52, after(2s));
    vmm.join();
    CHECK(request == "CONNECT 52");
    return c;
  };
  auto c = fake_vmm("OK 1073741824\n");
  REQUIRE(c.has_value());
  CHECK(c->assigned_port == 1073741824u);
  for (const char* bad : {"NO\n", "OK\n", "OK x12\n", "OK 99999999999\n", "OK  5\n", "ok 5\n"}) {
    INFO(bad);
    auto r = fake_vmm(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == make_error_code(errc::protocol_error));
  }
  auto longline = fake_vmm(std::string(100, 'O') + "\n");
  REQUIRE_FALSE(longline.has_value());
  CHECK(longline.error() == make_error_code(errc::oversized));
  auto closed = fake_vmm("");  // the VMM closes: nobody listens on that guest port
  REQUIRE_FALSE(closed.has_value());
  CHECK(closed.error() == make_error_code(errc::peer_closed));

  // And the acceptor side refuses a malformed request.
  auto acc = hybrid_vsock_acceptor::listen(dir / "acc.sock");
  REQUIRE(acc.has_value());
  bool client_wrote = false;
  std::thread client([&] {
    auto t = connect_unix(dir / "acc.sock", after(2s));
    if (!t) return;
    client_wrote = tsync::transport::detail::write_all(t->write_fd(), "CONNECT -1\n", after(1s)).has_value();
    std::this_thread::sleep_for(50ms);
  });
  auto a = acc->accept(after(2s));
  client.join();
  CHECK(client_wrote);
  REQUIRE_FALSE(a.has_value());
  CHECK(a.error() == make_error_code(errc::protocol_error));
}

TEST_CASE("a responder process with a known offset and drift is bracketed by every probe over a Unix socket",
          "[transport][process]") {
  temp_dir dir;
  const auto path = dir / "shift.sock";
  auto l = unix_listener::listen(path);
  REQUIRE(l.has_value());
  const tsync::test::shifted_clock shifted{987'654'321'000LL, -80'000};  // -80 ppm
  const pid_t child = tsync::test::fork_child([&] {
    auto t = connect_unix(path, after(5s));
    if (!t) return 2;
    auto c = shifted;
    auto st = tsync::probe::serve(*t, c, tsync::probe::responder_options{}, after(30s));
    return st.has_value() && st->ended == tsync::probe::serve_end::bye ? 0 : 3;
  });
  REQUIRE(child > 0);
  auto t = l->accept(after(5s));
  REQUIRE(t.has_value());
  raw_clock c;
  tsync::probe::series_config cfg;
  cfg.probes = 2000;
  cfg.deadline = after(20s);
  auto r = tsync::probe::run_series(*t, c, cfg);
  REQUIRE(r.ok());
  REQUIRE(r.probes.size() == 2000);
  std::size_t inside = 0;
  for (const auto& p : r.probes) {
    if (shifted.at(p.t1) <= p.g && p.g <= shifted.at(p.t2)) ++inside;
  }
  CHECK(inside == r.probes.size());
  // The hard interval of the whole series contains the offset at its midpoint, up to the drift over the series.
  const auto h = tsync::test::interval_of(r.probes);
  const auto mid = (r.probes.front().t1 + r.probes.back().t2) / 2;
  const auto truth = shifted.at(mid) - mid;
  const auto drift_span = (r.probes.back().t2 - r.probes.front().t1) * 80 / 1'000'000 + 2;
  CHECK(h.lo <= truth + drift_span);
  CHECK(truth - drift_span <= h.hi);
  CHECK(tsync::probe::send_bye(*t, after(1s)).has_value());
  CHECK(tsync::test::wait_child(child) == 0);
}
