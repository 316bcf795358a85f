// The simulated link: virtual time, sampled delays, loss, duplicates, and a
// probe exchange whose stamps are exact in virtual time.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <thread>

#include "probe/test_support.hpp"
#include "tsync/probe/exchange.hpp"
#include "tsync/transport/simulated.hpp"

using namespace std::chrono_literals;
using namespace tsync::transport;
using tsync::errc;

namespace {
tsync::sim::link_model quiet_link(std::int64_t fwd_min, std::int64_t back_min) {
  tsync::sim::link_model m;
  m.fwd.min_ns = fwd_min;
  m.back.min_ns = back_min;
  m.fwd.queue = tsync::sim::exponential(1000);
  m.back.queue = tsync::sim::exponential(1000);
  return m;
}
}  // namespace

TEST_CASE("a simulated message arrives after its sampled delay in virtual time", "[transport][sim]") {
  auto m = quiet_link(10000, 20000);
  m.fwd.queue = tsync::sim::constant(0);
  auto link = simulated_link::make(m, 1, 5000);
  REQUIRE(link.has_value());
  auto a = (*link)->initiator();
  auto b = (*link)->responder();
  std::int64_t arrived_at = 0;
  bool got_one = false;
  std::error_code end_error;
  std::thread receiver([&] {
    std::vector<std::byte> buf;
    auto r = b.receive(buf, after(10s));
    arrived_at = (*link)->now();
    got_one = r.has_value() && buf.size() == 1;
    // Then wait (idle) until the initiator closes.
    auto end = b.receive(buf, deadline::max());
    if (!end) end_error = end.error();
  });
  const std::byte one[1] = {std::byte{42}};
  REQUIRE(a.send(one, after(1s)).has_value());
  // Nothing comes back: the receive times out after its timeout in virtual time, at once in real time.
  std::vector<std::byte> buf;
  const auto t0 = std::chrono::steady_clock::now();
  auto none = a.receive(buf, after(30s));
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error() == make_error_code(errc::timed_out));
  CHECK((*link)->now() >= 5000 + 29'000'000'000LL);
  a.reset();
  receiver.join();
  CHECK(got_one);
  CHECK(end_error == make_error_code(errc::peer_closed));
  CHECK(arrived_at == 5000 + 10000);
}

TEST_CASE("an invalid link model is refused", "[transport][sim]") {
  auto m = quiet_link(10000, 10000);
  m.loss_prob = 1.5;
  auto link = simulated_link::make(m, 1);
  REQUIRE_FALSE(link.has_value());
  CHECK(link.error() == make_error_code(errc::invalid_argument));
}

TEST_CASE("a closed simulated end gives peer_closed after its messages are delivered", "[transport][sim]") {
  auto link = simulated_link::make(quiet_link(1000, 1000), 2);
  REQUIRE(link.has_value());
  auto a = (*link)->initiator();
  auto b = (*link)->responder();
  const std::byte one[1] = {std::byte{1}};
  REQUIRE(b.send(one, after(1s)).has_value());
  b.reset();
  std::vector<std::byte> buf;
  CHECK(a.receive(buf, after(1s)).has_value());
  auto r = a.receive(buf, after(1s));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == make_error_code(errc::peer_closed));
  auto s = a.send(one, after(1s));
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error() == make_error_code(errc::peer_closed));
}

TEST_CASE("a probe series over a simulated link recovers the known offset within the hard interval",
          "[transport][sim]") {
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  auto link = simulated_link::make(quiet_link(15000, 25000), seed, 1'000'000'000);
  REQUIRE(link.has_value());
  auto a = (*link)->initiator();
  auto b = (*link)->responder();
  const std::int64_t offset = 7'000'000'123;
  link_clock<> host{*link};  // <>: clang 14 has no CTAD for aggregates
  link_clock<> guest{*link, offset, 0, 0};
  bool served = false;
  std::thread responder([&] {
    served = tsync::probe::serve(b, guest, tsync::probe::responder_options{}, after(60s)).has_value();
  });
  tsync::probe::series_config cfg;
  cfg.per_probe_timeout = 10s;
  cfg.deadline = after(60s);
  auto r = tsync::probe::run_series(a, host, cfg);
  REQUIRE(r.ok());
  REQUIRE(r.probes.size() == 339);
  for (const auto& p : r.probes) {
    // Exact virtual delays: g − t1 is at least the forward minimum, t2 − g the backward one.
    CHECK(p.g - offset - p.t1 >= 15000);
    CHECK(p.t2 - (p.g - offset) >= 25000);
  }
  const auto h = tsync::test::interval_of(r.probes);
  CHECK(h.lo <= offset);
  CHECK(offset <= h.hi);
  CHECK(h.hi - h.lo >= 40000);  // never narrower than the minimum round trip
  CHECK(tsync::probe::send_bye(a, after(1s)).has_value());
  a.reset();  // an end that stays open without receiving holds virtual time still
  responder.join();
  CHECK(served);
}

TEST_CASE("loss duplicates and reordering on a simulated link cost probes but never break a series",
          "[transport][sim]") {
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  auto m = quiet_link(10000, 10000);
  m.loss_prob = 0.05;
  m.dup_prob = 0.05;
  m.reorder_prob = 0.02;
  auto link = simulated_link::make(m, seed);
  REQUIRE(link.has_value());
  auto a = (*link)->initiator();
  auto b = (*link)->responder();
  link_clock<> host{*link};  // <>: clang 14 has no CTAD for aggregates
  link_clock<> guest{*link, -5'000'000, 100'000, 0};  // 100 ppm
  bool served = false;
  std::thread responder([&] {
    served = tsync::probe::serve(b, guest, tsync::probe::responder_options{}, after(60s)).has_value();
  });
  std::uint32_t total = 0;
  for (std::uint32_t s = 1; s <= 3; ++s) {
    tsync::probe::series_config cfg;
    cfg.series_id = s;
    cfg.per_probe_timeout = 50ms;  // virtual: lost probes cost 50 ms of virtual time
    cfg.max_consecutive_lost = 30;
    cfg.handshake_retries = 10;
    cfg.deadline = after(60s);
    auto r = tsync::probe::run_series(a, host, cfg);
    INFO("series " << s << ": " << r.error.message());
    CHECK(r.ok());
    CHECK(r.probes.size() + r.stats.lost == r.stats.sent);
    for (const auto& p : r.probes) {
      CHECK(guest.at(p.t1) <= p.g);
      CHECK(p.g <= guest.at(p.t2));
    }
    total += static_cast<std::uint32_t>(r.probes.size());
  }
  CHECK(total > 800);
  CHECK((*link)->messages_lost() > 0);
  CHECK((*link)->messages_duplicated() > 0);
  (void)tsync::probe::send_bye(a, after(1s));
  a.reset();
  responder.join();
  CHECK(served);
}
