// The probe exchange asks nothing of its transport and clock beyond the
// concepts: run it over the archetypes of tests/support/archetypes.hpp.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "support/archetypes.hpp"
#include "tsync/probe/exchange.hpp"

using namespace std::chrono_literals;

TEST_CASE("run_series and serve work over the transport and clock archetypes") {
  auto a_to_b = std::make_shared<tsync::test::message_queue>();
  auto b_to_a = std::make_shared<tsync::test::message_queue>();
  tsync::test::transport_archetype initiator(a_to_b, b_to_a);
  // Both sides share one archetype clock (true offset 0) that advances 10 ns per read.
  tsync::test::clock_archetype clock(1'000'000, 10);

  std::atomic<bool> served_ok{false};
  std::thread responder([&] {
    tsync::test::transport_archetype t(b_to_a, a_to_b);
    auto st = tsync::probe::serve(t, clock, tsync::probe::responder_options{},
                                  tsync::transport::after(10s));
    served_ok = st.has_value();
  });

  tsync::probe::series_config cfg;
  cfg.series_id = 7;
  cfg.probes = 50;
  cfg.deadline = tsync::transport::after(10s);
  auto res = tsync::probe::run_series(initiator, clock, cfg);
  auto bye = tsync::probe::send_bye(initiator, tsync::transport::after(1s));
  responder.join();

  REQUIRE(res.ok());
  REQUIRE(bye.has_value());
  CHECK(served_ok.load());
  REQUIRE(res.probes.size() == 50);
  for (const auto& p : res.probes) {
    // One shared clock read in sequence: t1 < g < t2 for every probe.
    CHECK(p.t1 < p.g);
    CHECK(p.g < p.t2);
  }
}

TEST_CASE("run_series over the archetype reports a silent peer as timed out and keeps nothing it did not get") {
  auto a_to_b = std::make_shared<tsync::test::message_queue>();
  auto b_to_a = std::make_shared<tsync::test::message_queue>();
  tsync::test::transport_archetype initiator(a_to_b, b_to_a);
  tsync::test::clock_archetype clock(0, 1);
  tsync::probe::series_config cfg;
  cfg.probes = 5;
  cfg.per_probe_timeout = 20ms;
  cfg.end_timeout = 20ms;
  cfg.handshake_retries = 1;
  cfg.deadline = tsync::transport::after(2s);
  auto res = tsync::probe::run_series(initiator, clock, cfg);
  CHECK_FALSE(res.ok());
  CHECK(res.error == tsync::make_error_code(tsync::errc::timed_out));
  CHECK(res.probes.empty());
}
