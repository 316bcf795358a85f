// The exchange's state machines driven part by part: `initiator_series`
// (start / step / finish) and `responder` (one message per step).
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "probe/test_support.hpp"
#include "tsync/probe/exchange.hpp"
#include "tsync/transport/socketpair.hpp"

using namespace std::chrono_literals;
using namespace tsync::probe;
using tsync::errc;
using tsync::test::raw_clock;
namespace tr = tsync::transport;

namespace {
std::vector<std::byte> encoded(const message& m) {
  std::vector<std::byte> b(encoded_size(m));
  auto n = encode(m, b);
  REQUIRE(n);
  b.resize(*n);
  return b;
}
message receive_one(tr::stream_transport& t) {
  std::vector<std::byte> b;
  auto r = t.receive(b, tr::after(2s));
  REQUIRE(r);
  auto m = decode(b);
  REQUIRE(m);
  return *m;
}
}  // namespace

TEST_CASE("initiator_series: start, then one probe per step, then finish") {
  auto pair = tr::make_socketpair();
  REQUIRE(pair);
  auto& a = pair->first;  // not a structured binding: clang 14 cannot capture one
  auto& b = pair->second;
  std::jthread peer([&b] {
    raw_clock c;
    (void)serve(b, c, responder_options{}, tr::after(10s));
  });
  raw_clock c;
  series_config cfg;
  cfg.series_id = 7;
  cfg.probes = 5;
  cfg.per_probe_timeout = 1s;
  initiator_series<tr::stream_transport, raw_clock> s(a, c, cfg);
  REQUIRE(s.start());
  CHECK(s.result().stats.sent == 0);
  int steps = 1;
  while (s.step()) {
    CHECK(s.result().stats.sent == static_cast<std::uint32_t>(steps));
    ++steps;
  }
  CHECK(steps == 5);  // the fifth step sends the last probe and says there is no next one
  CHECK_FALSE(s.failed());
  CHECK_FALSE(s.step());
  s.finish();
  const auto r = s.result();
  CHECK(r.ok());
  CHECK(r.probes.size() == 5);
  CHECK(r.stats.peer_received == 5);
  REQUIRE(send_bye(a, tr::after(1s)));
}

TEST_CASE("initiator_series: start refuses a bad configuration and a silent peer") {
  auto pair = tr::make_socketpair();
  REQUIRE(pair);
  auto& [a, b] = *pair;
  raw_clock c;
  series_config bad;
  bad.probes = 0;
  initiator_series<tr::stream_transport, raw_clock> s0(a, c, bad);
  CHECK_FALSE(s0.start());
  CHECK(s0.result().error == tsync::make_error_code(errc::invalid_argument));
  series_config cfg;
  cfg.per_probe_timeout = 20ms;
  cfg.handshake_retries = 1;
  initiator_series<tr::stream_transport, raw_clock> s(a, c, cfg);
  CHECK_FALSE(s.start());  // b never answers
  CHECK(s.result().error == tsync::make_error_code(errc::timed_out));
  CHECK_FALSE(s.step());
}

TEST_CASE("responder: each step answers one message and the last one ends serving") {
  auto pair = tr::make_socketpair();
  REQUIRE(pair);
  auto& [a, b] = *pair;
  raw_clock c;
  responder_options opt;
  opt.poll_interval = 10ms;
  responder<tr::stream_transport, raw_clock> r(b, c, opt, tr::after(10s));
  CHECK_FALSE(r.step());  // nothing yet: a poll turn
  REQUIRE(a.send(encoded(start_msg{3, 0, 2, 0}), tr::after(1s)));
  CHECK_FALSE(r.step());
  CHECK(r.active());
  CHECK(std::holds_alternative<start_ack_msg>(receive_one(a)));
  REQUIRE(a.send(encoded(probe_msg{3, 0}), tr::after(1s)));
  CHECK_FALSE(r.step());
  CHECK(std::holds_alternative<reply_msg>(receive_one(a)));
  REQUIRE(a.send(encoded(probe_msg{3, 0}), tr::after(1s)));  // repeated: dropped
  CHECK_FALSE(r.step());
  CHECK(r.stats().duplicate_probes == 1);
  REQUIRE(a.send(encoded(end_msg{3, 1}), tr::after(1s)));
  CHECK_FALSE(r.step());
  CHECK_FALSE(r.active());
  CHECK(std::get<end_ack_msg>(receive_one(a)).probes_received == 1);
  REQUIRE(a.send(encoded(bye_msg{}), tr::after(1s)));
  auto done = r.step();
  REQUIRE(done);
  REQUIRE(*done);
  CHECK((*done)->ended == serve_end::bye);
  CHECK((*done)->series_completed == 1);
}
