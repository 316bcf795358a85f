// The session and the peer's identity: every series' outcome says who answered
// it (from the hello before it); the vCPU's result keeps the latest; a runner
// that reconnected after the peer went away keeps the channel going.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "tsync/probe/identity.hpp"
#include "tsync/sync/session.hpp"

using namespace tsync;
using namespace tsync::sync;
using namespace std::chrono_literals;

namespace {

probe::peer_identity ident(std::uint8_t boot, std::uint64_t nonce) {
  probe::peer_identity id;
  id.clock = "mono_raw";
  id.boot_id.fill(boot);
  id.nonce = nonce;
  return id;
}

/// A peer answering series k with identity ids[k] (the last repeats); series
/// `lose_at` ends with the peer gone, reconnected or not.
struct peer_script {
  std::vector<probe::peer_identity> ids;
  std::uint32_t lose_at = 1000;
  bool reconnects = false;
  std::atomic<std::uint32_t> calls{0};
  std::atomic<std::int64_t> t{1'000'000'000};

  series_outcome run(std::uint32_t, std::uint32_t vcpu, std::uint32_t n) {
    const auto k = calls.fetch_add(1);
    std::vector<probe_sample> probes;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::int64_t t1 = t.fetch_add(10'000);
      probes.push_back(probe_sample{t1, t1 + 1000, t1 + 2000, i, 0, vcpu});
    }
    const auto& id = ids[std::min<std::size_t>(k, ids.size() - 1)];
    if (k == lose_at) return series_outcome(std::move(probes), make_error_code(errc::peer_closed), id, reconnects);
    return series_outcome(std::move(probes), {}, id);
  }
};

std::vector<vcpu_result> run_session(peer_script& peer, std::uint32_t series) {
  session_config cfg;
  cfg.probes = 20;
  cfg.interval = 1ms;
  cfg.max_rounds = series - 1;
  auto s = make_session({channel{{0}, [&](std::uint32_t id, std::uint32_t v, std::uint32_t n) {
                                   return peer.run(id, v, n);
                                 }}},
                        cfg);
  REQUIRE(s.has_value());
  REQUIRE((*s)->start().has_value());
  (void)(*s)->wait_for_rounds(series - 1, 20s);
  (*s)->stop();
  return (*s)->results();
}

}  // namespace

TEST_CASE("the vCPU's result keeps the identity of the latest peer that answered", "[sync][identity]") {
  peer_script peer;
  peer.ids = {ident(1, 10), ident(1, 10), ident(2, 11)};
  auto r = run_session(peer, 4);
  REQUIRE(r.size() == 1);
  REQUIRE(r[0].peer.has_value());
  CHECK(*r[0].peer == ident(2, 11));
  CHECK(r[0].series.size() == 4);
}

TEST_CASE("a lost peer ends the channel unless the runner reconnected", "[sync][identity]") {
  {
    peer_script peer;
    peer.ids = {ident(1, 10)};
    peer.lose_at = 1;
    auto r = run_session(peer, 4);
    CHECK(r[0].peer_lost);
    CHECK(r[0].series.size() == 2);
  }
  {
    peer_script peer;
    peer.ids = {ident(1, 10), ident(1, 10), ident(1, 12)};
    peer.lose_at = 1;
    peer.reconnects = true;
    auto r = run_session(peer, 4);
    CHECK_FALSE(r[0].peer_lost);
    CHECK(r[0].series.size() == 4);
    CHECK(r[0].series[1].error == make_error_code(errc::peer_closed));
    REQUIRE(r[0].peer.has_value());
    CHECK(r[0].peer->nonce == 12);
  }
}

TEST_CASE("identity_change tells a reboot from an agent restart and ignores the clock", "[sync][identity]") {
  auto a = ident(1, 10);
  auto b = a;
  b.clock = "other";
  CHECK_FALSE(probe::identity_change(a, b).has_value());
  auto reboot = probe::identity_change(a, ident(2, 11));
  REQUIRE(reboot.has_value());
  CHECK(reboot->find("rebooted") != std::string::npos);
  CHECK(reboot->find(probe::format_boot_id(ident(2, 11).boot_id)) != std::string::npos);
  auto restart = probe::identity_change(a, ident(1, 11));
  REQUIRE(restart.has_value());
  CHECK(restart->find("restarted") != std::string::npos);
}
