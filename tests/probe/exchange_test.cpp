// The probe exchange: run_series (initiator) against serve (responder) over a
// socketpair, in threads and in forked processes, with faults injected.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "probe/test_support.hpp"
#include "tsync/probe/exchange.hpp"
#include "tsync/transport/socketpair.hpp"

using namespace std::chrono_literals;
using namespace tsync::probe;
using tsync::errc;
using tsync::test::pair_fixture;
using tsync::test::raw_clock;
using tsync::transport::after;
using tsync::transport::stream_transport;

namespace {

void check_same_clock_series(const series_result& r, std::uint32_t n) {
  REQUIRE(r.ok());
  REQUIRE(r.probes.size() == n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto& p = r.probes[i];
    INFO("probe " << i);
    CHECK(p.id == i);
    CHECK(p.t1 <= p.g);
    CHECK(p.g <= p.t2);
  }
  const auto h = tsync::test::interval_of(r.probes);
  CHECK(h.lo <= 0);
  CHECK(0 <= h.hi);
}

/// What a responder thread returned (checked after join: Catch2 assertions are not thread-safe).
using serve_result = tsync::expected<serve_stats, std::error_code>;
serve_result no_result() { return tsync::unexpected(make_error_code(errc::not_found)); }

series_config cfg(std::uint32_t id, std::uint32_t n = 339) {
  series_config c;
  c.series_id = id;
  c.vcpu = 1;
  c.probes = n;
  c.per_probe_timeout = 200ms;
  c.deadline = after(10s);
  return c;
}

}  // namespace

TEST_CASE("a series against a responder thread brackets every responder stamp", "[probe][exchange]") {
  pair_fixture f;
  std::atomic<std::uint32_t> pinned_vcpu{9999};
  serve_result st = no_result();
  std::thread responder([&] {
    raw_clock c;
    responder_options o;
    o.on_series_start = [&](const start_msg& s) {
      pinned_vcpu = s.vcpu;
      return std::error_code{};
    };
    st = serve(f.b, c, o, after(20s));
  });
  raw_clock c;
  for (std::uint32_t s = 1; s <= 3; ++s) {
    auto r = run_series(f.a, c, cfg(s));
    check_same_clock_series(r, 339);
    CHECK(r.stats.sent == 339);
    CHECK(r.stats.replies == 339);
    CHECK(r.stats.peer_received == 339);
    CHECK(r.mode == stamp_mode::immediate);
    for (const auto& p : r.probes) CHECK(p.burst == s);
  }
  CHECK(pinned_vcpu.load() == 1);
  CHECK(send_result(f.a, result_msg{3, 1, 0, -10, 10, 20, 339, 0}, after(1s)).has_value());
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
  REQUIRE(st.has_value());
  CHECK(st->ended == serve_end::bye);
  CHECK(st->series_completed == 3);
  CHECK(st->probes_answered == 3 * 339);
  CHECK(st->results_received == 1);
}

TEST_CASE("a known offset and drift of the responder clock lies inside every probe bracket", "[probe][exchange]") {
  pair_fixture f;
  tsync::test::shifted_clock shifted{-123456789012LL, 250000};  // 250 ppm
  serve_result st = no_result();
  std::thread responder([&] { st = serve(f.b, shifted, responder_options{}, after(20s)); });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(5));
  REQUIRE(r.ok());
  REQUIRE(r.probes.size() == 339);
  for (const auto& p : r.probes) {
    // The responder's reading is shifted(raw) for some raw in [t1, t2]; the map is monotone.
    CHECK(shifted.at(p.t1) <= p.g);
    CHECK(p.g <= shifted.at(p.t2));
  }
  const auto h = tsync::test::interval_of(r.probes);
  const auto mid_raw = (r.probes.front().t1 + r.probes.back().t2) / 2;
  const auto true_offset = shifted.at(mid_raw) - mid_raw;
  const auto span = (r.probes.back().t2 - r.probes.front().t1) / 1000000 * 250 / 1000 + 2;  // drift over the series
  CHECK(h.lo <= true_offset + span);
  CHECK(true_offset - span <= h.hi);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("deferred stamps arrive in batches after the end and are matched by probe id", "[probe][exchange]") {
  pair_fixture f;
  serve_result st = no_result();
  std::thread responder([&] {
    raw_clock c;
    responder_options o;
    o.mode = stamp_mode::deferred;
    o.resolve_deferred = [](const start_msg&, std::vector<stamp_entry>& s) {
      std::reverse(s.begin(), s.end());  // order must not matter
      return std::error_code{};
    };
    st = serve(f.b, c, o, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(11, 2500));  // more than two batches
  CHECK(r.mode == stamp_mode::deferred);
  check_same_clock_series(r, 2500);
  CHECK(r.stats.deferred_stamps == 2500);
  CHECK(r.stats.unresolved == 0);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("a series between two forked processes keeps every stamp causal", "[probe][exchange]") {
  pair_fixture f;
  const pid_t child = tsync::test::fork_child([&] {
    raw_clock c;
    auto st = serve(f.b, c, responder_options{}, after(20s));
    return st.has_value() && st->ended == serve_end::bye && st->series_completed == 2 ? 0 : 3;
  });
  REQUIRE(child > 0);
  raw_clock c;
  check_same_clock_series(run_series(f.a, c, cfg(1)), 339);
  check_same_clock_series(run_series(f.a, c, cfg(2, 1000)), 1000);
  CHECK(send_bye(f.a, after(1s)).has_value());
  CHECK(tsync::test::wait_child(child) == 0);
}

TEST_CASE("a responder killed mid-series gives peer_closed and keeps the samples so far", "[probe][exchange][fault]") {
  pair_fixture f;
  const pid_t child = tsync::test::fork_child([&] {
    raw_clock c;
    responder_options o;
    o.on_probe = [](const probe_msg& p) {
      if (p.probe_id == 100) ::raise(SIGKILL);
    };
    (void)serve(f.b, c, o, after(20s));
    return 0;
  });
  REQUIRE(child > 0);
  f.b = stream_transport{};  // the parent's copy of the responder end must not keep it open
  raw_clock c;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_series(f.a, c, cfg(1));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(r.error == make_error_code(errc::peer_closed));
  CHECK(r.probes.size() == 100);
  CHECK(tsync::test::wait_child(child) == 128 + SIGKILL);
}

TEST_CASE("a responder that stalls past the deadline gives timed_out at the deadline", "[probe][exchange][fault]") {
  pair_fixture f;
  const pid_t child = tsync::test::fork_child([&] {
    raw_clock c;
    responder_options o;
    o.on_probe = [](const probe_msg& p) {
      if (p.probe_id == 50) ::sleep(30);
    };
    (void)serve(f.b, c, o, after(60s));
    return 0;
  });
  REQUIRE(child > 0);
  raw_clock c;
  auto conf = cfg(1);
  conf.per_probe_timeout = 10s;  // only the series deadline can end this
  conf.deadline = after(300ms);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_series(f.a, c, conf);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 2s);
  CHECK(r.error == make_error_code(errc::timed_out));
  CHECK(r.probes.size() == 50);
  CHECK(r.stats.lost == 1);
  ::kill(child, SIGKILL);
  tsync::test::wait_child(child);
}

TEST_CASE("a silent responder is detected after the consecutive loss limit", "[probe][exchange][fault]") {
  pair_fixture f;
  std::atomic<bool> quiet{false};
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  ft.on_send = [&](const message& m, std::span<const std::byte>, auto&, auto) {
    if (const auto* r = std::get_if<reply_msg>(&m); r != nullptr && r->probe_id >= 20) return true;  // swallow
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    (void)serve(ft, c, responder_options{}, after(20s));
  });
  raw_clock c;
  auto conf = cfg(1);
  conf.per_probe_timeout = 20ms;
  conf.max_consecutive_lost = 5;
  auto r = run_series(f.a, c, conf);
  CHECK(r.error == make_error_code(errc::timed_out));
  CHECK(r.probes.size() == 20);
  CHECK(r.stats.lost == 5);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
  (void)quiet;
}

TEST_CASE("a truncated reply ends the series with truncated and keeps the samples", "[probe][exchange][fault]") {
  pair_fixture f;
  serve_result st = no_result();
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  ft.on_send = [](const message& m, std::span<const std::byte> bytes, auto& self, auto d) {
    if (const auto* r = std::get_if<reply_msg>(&m); r != nullptr && r->probe_id == 30) {
      (void)self.inner.send(bytes.first(bytes.size() - 5), d);
      return true;
    }
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    st = serve(ft, c, responder_options{}, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(1));
  CHECK(r.error == make_error_code(errc::truncated));
  CHECK(r.probes.size() == 30);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
  // The initiator reported the bad message back: the responder saw an error message, then bye.
  REQUIRE(st.has_value());
  CHECK(st->errors_received == 1);
}

TEST_CASE("an oversized frame or payload length ends the series with oversized", "[probe][exchange][fault]") {
  for (const bool frame_level : {true, false}) {
    INFO("frame level " << frame_level);
    pair_fixture f;
    tsync::test::fault_transport<stream_transport> ft{f.b, {}};
    const int raw_fd = f.b.write_fd();
    std::atomic<bool> wrote{true};
    ft.on_send = [&](const message& m, std::span<const std::byte> bytes, auto& self, auto d) {
      if (const auto* r = std::get_if<reply_msg>(&m); r != nullptr && r->probe_id == 7) {
        if (frame_level) {
          const unsigned char len[4] = {0xFF, 0xFF, 0xFF, 0x7F};
          wrote = ::write(raw_fd, len, 4) == 4;
        } else {
          std::vector<std::byte> b(bytes.begin(), bytes.end());
          b[10] = std::byte{0x7F};  // payload length field, byte 2
          (void)self.inner.send(b, d);
        }
        return true;
      }
      return false;
    };
    std::thread responder([&] {
      raw_clock c;
      (void)serve(ft, c, responder_options{}, after(20s));
    });
    raw_clock c;
    auto r = run_series(f.a, c, cfg(1));
    CHECK(r.error == make_error_code(errc::oversized));
    CHECK(r.probes.size() == 7);
    if (frame_level) {
      // The stream is out of step: the transport refuses further use.
      CHECK(f.a.broken());
      std::vector<std::byte> buf;
      auto again = f.a.receive(buf, after(10ms));
      REQUIRE_FALSE(again.has_value());
      CHECK(again.error() == make_error_code(errc::io_error));
    } else {
      CHECK(send_bye(f.a, after(1s)).has_value());
    }
    f.a = stream_transport{};  // closing ends the responder
    responder.join();
    CHECK(wrote.load());
  }
}

TEST_CASE("garbage from the responder is a protocol error", "[probe][exchange][fault]") {
  pair_fixture f;
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  ft.on_send = [](const message& m, std::span<const std::byte>, auto& self, auto d) {
    if (const auto* r = std::get_if<reply_msg>(&m); r != nullptr && r->probe_id == 12) {
      std::vector<std::byte> junk(24, std::byte{0x5A});
      (void)self.inner.send(junk, d);
      return true;
    }
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    (void)serve(ft, c, responder_options{}, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(1));
  CHECK(r.error == make_error_code(errc::protocol_error));
  CHECK(r.probes.size() == 12);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("duplicated replies are counted and dropped and the series completes", "[probe][exchange][fault]") {
  pair_fixture f;
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  ft.on_send = [](const message& m, std::span<const std::byte> bytes, auto& self, auto d) {
    if (std::holds_alternative<reply_msg>(m)) {
      (void)self.inner.send(bytes, d);
      (void)self.inner.send(bytes, d);
      return true;
    }
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    (void)serve(ft, c, responder_options{}, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(1));
  check_same_clock_series(r, 339);
  CHECK(r.stats.duplicates == 339);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("a reordered reply arrives late and is dropped while its probe counts as lost", "[probe][exchange][fault]") {
  pair_fixture f;
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  std::vector<std::byte> held;
  ft.on_send = [&](const message& m, std::span<const std::byte> bytes, auto& self, auto d) {
    const auto* r = std::get_if<reply_msg>(&m);
    if (r == nullptr) return false;
    if (r->probe_id == 5) {
      held.assign(bytes.begin(), bytes.end());
      return true;
    }
    if (r->probe_id == 6) {
      (void)self.inner.send(bytes, d);
      (void)self.inner.send(held, d);
      return true;
    }
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    (void)serve(ft, c, responder_options{}, after(20s));
  });
  raw_clock c;
  auto conf = cfg(1);
  conf.per_probe_timeout = 30ms;
  auto r = run_series(f.a, c, conf);
  REQUIRE(r.ok());
  CHECK(r.probes.size() == 338);
  CHECK(r.stats.lost == 1);
  CHECK(r.stats.late == 1);
  for (const auto& p : r.probes) CHECK(p.id != 5);
  for (const auto& p : r.probes) {
    CHECK(p.t1 <= p.g);
    CHECK(p.g <= p.t2);
  }
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("replies for other series and for probes never sent are counted and dropped", "[probe][exchange][fault]") {
  pair_fixture f;
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  ft.on_send = [](const message& m, std::span<const std::byte>, auto& self, auto d) {
    if (const auto* r = std::get_if<reply_msg>(&m); r != nullptr && r->probe_id == 10) {
      (void)self.send_message(reply_msg{r->series_id, 300, 1}, d);     // not sent yet
      (void)self.send_message(reply_msg{r->series_id, 65535, 1}, d);   // beyond the series
      (void)self.send_message(reply_msg{r->series_id + 1, 10, 1}, d);  // another series
      (void)self.send_message(end_ack_msg{77, 3}, d);                  // stale ack
    }
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    (void)serve(ft, c, responder_options{}, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(1));
  check_same_clock_series(r, 339);
  CHECK(r.stats.out_of_range == 2);
  CHECK(r.stats.stale == 2);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("an end_ack claiming more probes than were sent is a protocol error with samples kept", "[probe][exchange][fault]") {
  pair_fixture f;
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  ft.on_send = [](const message& m, std::span<const std::byte>, auto& self, auto d) {
    if (const auto* k = std::get_if<end_ack_msg>(&m)) {
      (void)self.send_message(end_ack_msg{k->series_id, k->probes_received + 5}, d);
      return true;
    }
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    (void)serve(ft, c, responder_options{}, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(1));
  CHECK(r.error == make_error_code(errc::protocol_error));
  CHECK(r.probes.size() == 339);
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("deferred stamps beyond what was sent are rejected", "[probe][exchange][fault]") {
  pair_fixture f;
  tsync::test::fault_transport<stream_transport> ft{f.b, {}};
  ft.on_send = [](const message& m, std::span<const std::byte>, auto& self, auto d) {
    if (const auto* b = std::get_if<deferred_msg>(&m)) {
      deferred_msg more = *b;
      more.last = false;
      (void)self.send_message(more, d);  // the whole set twice, then once more
      (void)self.send_message(more, d);
      (void)self.send_message(*b, d);
      return true;
    }
    return false;
  };
  std::thread responder([&] {
    raw_clock c;
    responder_options o;
    o.mode = stamp_mode::deferred;
    (void)serve(ft, c, o, after(20s));
  });
  raw_clock c;
  auto r = run_series(f.a, c, cfg(1, 100));
  CHECK(r.error == make_error_code(errc::protocol_error));
  CHECK(r.probes.size() == 100);  // stamps before the excess were kept
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
}

TEST_CASE("a responder that refuses a series reports its reason", "[probe][exchange][fault]") {
  pair_fixture f;
  serve_result st = no_result();
  std::thread responder([&] {
    raw_clock c;
    responder_options o;
    o.on_series_start = [](const start_msg& s) {
      return s.vcpu == 3 ? make_error_code(errc::not_found) : std::error_code{};
    };
    st = serve(f.b, c, o, after(20s));
  });
  raw_clock c;
  auto conf = cfg(1);
  conf.vcpu = 3;
  auto r = run_series(f.a, c, conf);
  CHECK(r.error == make_error_code(errc::not_found));
  CHECK(r.peer_reason.find("refused") != std::string::npos);
  CHECK(r.probes.empty());
  check_same_clock_series(run_series(f.a, c, cfg(2)), 339);  // the session goes on
  CHECK(send_bye(f.a, after(1s)).has_value());
  responder.join();
  REQUIRE(st.has_value());
  CHECK(st->series_refused == 1);
  CHECK(st->series_completed == 1);
}

TEST_CASE("the responder rejects garbage and a peer lost mid-series with clear errors", "[probe][exchange][fault]") {
  {
    pair_fixture f;
    std::vector<std::byte> junk(16, std::byte{0x33});
    CHECK(f.a.send(junk, after(1s)).has_value());
    raw_clock c;
    auto st = serve(f.b, c, responder_options{}, after(5s));
    REQUIRE_FALSE(st.has_value());
    CHECK(st.error() == make_error_code(errc::protocol_error));
    std::vector<std::byte> buf;
    auto got = f.a.receive(buf, after(5s));  // the responder said why it stopped
    REQUIRE(got.has_value());
    auto m = decode(buf);
    REQUIRE(m.has_value());
    REQUIRE(std::holds_alternative<error_msg>(*m));
    CHECK(std::get<error_msg>(*m).code == static_cast<std::uint32_t>(errc::protocol_error));
  }
  {
    pair_fixture f;
    std::atomic<bool> acked{false};
    std::thread initiator([&] {
      auto s = encode_to_vector(start_msg{4, 0, 10, 0});
      if (s) (void)f.a.send(*s, after(1s));
      std::vector<std::byte> buf;
      acked = f.a.receive(buf, after(5s)).has_value();  // start_ack
      f.a = stream_transport{};                         // vanish mid-series
    });
    raw_clock c;
    auto st = serve(f.b, c, responder_options{}, after(5s));
    initiator.join();
    CHECK(acked.load());
    REQUIRE_FALSE(st.has_value());
    CHECK(st.error() == make_error_code(errc::peer_closed));
  }
}

TEST_CASE("serve stops on request and at its deadline", "[probe][exchange]") {
  pair_fixture f;
  raw_clock c;
  responder_options o;
  o.poll_interval = 5ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto st = serve(f.b, c, o, after(50ms));
  REQUIRE(st.has_value());
  CHECK(st->ended == serve_end::deadline);
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
  std::stop_source src;
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    src.request_stop();
  });
  auto st2 = serve(f.b, c, o, after(10s), src.get_token());
  stopper.join();
  REQUIRE(st2.has_value());
  CHECK(st2->ended == serve_end::stopped);
}

TEST_CASE("a bad series configuration is refused before anything is sent", "[probe][exchange]") {
  pair_fixture f;
  raw_clock c;
  for (auto conf : {cfg(1, 0), cfg(1, max_probes_per_series + 1)}) {
    auto r = run_series(f.a, c, conf);
    CHECK(r.error == make_error_code(errc::invalid_argument));
  }
  auto conf = cfg(1);
  conf.vcpu = max_vcpu_id + 1;
  CHECK(run_series(f.a, c, conf).error == make_error_code(errc::invalid_argument));
  std::vector<std::byte> buf;
  auto nothing = f.b.receive(buf, after(10ms));
  REQUIRE_FALSE(nothing.has_value());
  CHECK(nothing.error() == make_error_code(errc::timed_out));
}
