// The version-2 handshake: `hello` with clock and boot identity both ways, the
// responder's refusals (no hello, clock mismatch), and peers speaking version 1.
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "probe/test_support.hpp"
#include "tsync/probe/exchange.hpp"
#include "tsync/probe/identity.hpp"
#include "tsync/transport/socketpair.hpp"

using namespace std::chrono_literals;
using namespace tsync::probe;
using tsync::errc;
using tsync::test::pair_fixture;
using tsync::test::raw_clock;
using tsync::transport::after;
using tsync::transport::stream_transport;

namespace {

using serve_result = tsync::expected<serve_stats, std::error_code>;
serve_result no_result() { return tsync::unexpected(make_error_code(errc::not_found)); }

peer_identity ident(std::string clock, std::uint64_t nonce, std::uint8_t boot = 7) {
  peer_identity id;
  id.clock = std::move(clock);
  id.unit = id.clock == "x86-tsc" ? time_unit::cycles : time_unit::ns;
  id.tsc_hz = id.unit == time_unit::cycles ? 2'000'000'000u : 0u;
  id.boot_id.fill(boot);
  id.nonce = nonce;
  return id;
}

series_config cfg(std::uint32_t id, std::uint32_t n = 20) {
  series_config c;
  c.series_id = id;
  c.probes = n;
  c.per_probe_timeout = 200ms;
  c.deadline = after(10s);
  return c;
}

/// What a version-1 responder did with a message of another version: answer
/// with a version-1 `error` (unsupported_version, "malformed message") and stop.
void old_responder(stream_transport& t) {
  std::vector<std::byte> in;
  if (!t.receive(in, after(5s))) return;
  const message e = error_msg{0, static_cast<std::uint32_t>(errc::unsupported_version), "malformed message"};
  std::vector<std::byte> out(encoded_size(e));
  auto n = encode(e, out, 1);
  if (n) (void)t.send(std::span<const std::byte>(out.data(), *n), after(1s));
}

}  // namespace

TEST_CASE("hello carries both identities and the series runs after it", "[probe][handshake]") {
  pair_fixture f;
  serve_result st = no_result();
  std::optional<peer_identity> seen;
  std::thread responder([&] {
    raw_clock c;
    responder_options o;
    o.identity = ident("mono_raw", 22, 2);
    o.require_hello = true;
    o.on_hello = [&](const peer_identity& p) -> std::optional<std::string> {
      seen = p;
      return std::nullopt;
    };
    st = serve(f.b, c, o, after(20s));
  });
  raw_clock c;
  auto h = exchange_hello(f.a, ident("mono_raw", 11, 1), after(5s));
  REQUIRE(h.ok());
  REQUIRE(h.peer.has_value());
  CHECK(*h.peer == ident("mono_raw", 22, 2));
  auto r = run_series(f.a, c, cfg(1));
  CHECK(r.ok());
  CHECK(r.probes.size() == 20);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
  REQUIRE(seen.has_value());
  CHECK(*seen == ident("mono_raw", 11, 1));
  REQUIRE(st.has_value());
  CHECK(st->hellos == 1);
  CHECK(st->series_completed == 1);
}

TEST_CASE("a responder that requires hello refuses a start without one, and a mismatch refuses every start",
          "[probe][handshake]") {
  pair_fixture f;
  serve_result st = no_result();
  std::thread responder([&] {
    raw_clock c;
    responder_options o;
    o.identity = ident("x86-tsc", 22);
    o.require_hello = true;
    o.on_hello = [&](const peer_identity& p) { return clock_mismatch(p, ident("x86-tsc", 22)); };
    st = serve(f.b, c, o, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(1));
  CHECK(r.error == make_error_code(errc::protocol_error));
  CHECK(r.peer_reason.find("hello") != std::string::npos);
  CHECK(r.probes.empty());
  // A clock mismatch: the responder still says who it is, then refuses.
  auto h = exchange_hello(f.a, ident("mono_raw", 11), after(5s));
  REQUIRE(h.peer.has_value());
  CHECK(h.peer->clock == "x86-tsc");
  CHECK(clock_mismatch(ident("mono_raw", 11), *h.peer).has_value());
  auto r2 = run_series(f.a, c, cfg(2));
  CHECK_FALSE(r2.ok());
  CHECK(r2.probes.empty());
  CHECK(r2.peer_reason.find("'mono_raw'") != std::string::npos);
  CHECK(r2.peer_reason.find("'x86-tsc'") != std::string::npos);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
  REQUIRE(st.has_value());
  CHECK(st->hellos_refused == 1);
  CHECK(st->series_refused == 2);
  CHECK(st->probes_answered == 0);
}

TEST_CASE("an initiator facing a version-1 responder says the peer is older", "[probe][handshake]") {
  pair_fixture f;
  std::thread peer([&] { old_responder(f.b); });
  auto h = exchange_hello(f.a, ident("mono_raw", 1), after(5s));
  peer.join();
  CHECK(h.error == make_error_code(errc::unsupported_version));
  CHECK(h.peer_version == 1);
  CHECK(h.message.find("peer is older (protocol 1)") != std::string::npos);
}

TEST_CASE("a responder facing a version-1 initiator answers in version 1 and says the peer is older",
          "[probe][handshake]") {
  pair_fixture f;
  std::optional<std::uint8_t> told;
  serve_result st = no_result();
  std::thread responder([&] {
    raw_clock c;
    responder_options o;
    o.require_hello = true;
    o.on_version_mismatch = [&](std::uint8_t v) { told = v; };
    st = serve(f.b, c, o, after(20s));
  });
  // What a version-1 `tsync sync` sends first: a version-1 start.
  const message s = start_msg{1, 0, 10, 0};
  std::vector<std::byte> out(encoded_size(s));
  auto n = encode(s, out, 1);
  REQUIRE(n.has_value());
  REQUIRE(f.a.send(std::span<const std::byte>(out.data(), *n), after(1s)).has_value());
  std::vector<std::byte> in;
  REQUIRE(f.a.receive(in, after(5s)).has_value());
  responder.join();
  REQUIRE(told.has_value());
  CHECK(*told == 1);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error() == make_error_code(errc::unsupported_version));
  // The answer is in version 1 (what the old peer can decode): an error with a clear reason.
  REQUIRE(peek_version(in).has_value());
  CHECK(*peek_version(in) == 1);
  in[4] = std::byte{wire_version};  // the error layout is the same in both versions
  auto m = decode(in);
  REQUIRE(m.has_value());
  REQUIRE(std::holds_alternative<error_msg>(*m));
  const auto& e = std::get<error_msg>(*m);
  CHECK(e.code == static_cast<std::uint32_t>(errc::unsupported_version));
  CHECK(e.reason.find("protocol 2") != std::string::npos);
}

TEST_CASE("a peer that never answers the hello times out at the deadline", "[probe][handshake]") {
  pair_fixture f;
  const auto t0 = std::chrono::steady_clock::now();
  auto h = exchange_hello(f.a, ident("mono_raw", 1), after(300ms), 100ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(h.error == make_error_code(errc::timed_out));
  CHECK(h.message.find("nobody answered") != std::string::npos);
  CHECK(took >= 290ms);
  CHECK(took < 3s);
  // It re-sent the hello while waiting (a port the guest opens late still gets one).
  std::vector<std::byte> in;
  int hellos = 0;
  while (f.b.receive(in, after(50ms))) {
    auto m = decode(in);
    if (m && std::holds_alternative<hello_msg>(*m)) ++hellos;
  }
  CHECK(hellos >= 2);
}
