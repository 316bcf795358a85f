// The session and the peer's identity: a change of boot id or session nonce
// between two series of a vCPU is a `reboot` break; the table is split there
// (segments), never joined across it.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

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

/// A peer whose identity per series is given; after its "reboot" its clock
/// starts again near 0 (guest times go backwards), as a rebooted guest's does.
struct rebooting_peer {
  std::vector<probe::peer_identity> ids;  // identity answering series k (the last one repeats)
  std::atomic<std::uint32_t> calls{0};
  std::atomic<std::int64_t> t{1'000'000'000};

  series_outcome run(std::uint32_t, std::uint32_t vcpu, std::uint32_t n) {
    const auto k = calls.fetch_add(1);
    const auto& id = ids[std::min<std::size_t>(k, ids.size() - 1)];
    // Offset: +5 s in the first boot, -900 ms (a young clock) after each change.
    const std::int64_t off = id == ids.front() ? 5'000'000'000 : -900'000'000 + 1000 * static_cast<std::int64_t>(k);
    series_outcome out;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::int64_t t1 = t.fetch_add(10'000);
      probe_sample p;
      p.t1 = t1;
      p.g = t1 + 1000 + off;
      p.t2 = t1 + 2000;
      p.id = i;
      p.vcpu = vcpu;
      out.probes.push_back(p);
    }
    out.peer = id;
    return out;
  }
};

std::vector<vcpu_result> run_session(rebooting_peer& peer, std::uint32_t series) {
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
  REQUIRE((*s)->wait_for_rounds(series - 1, 20s));
  (*s)->stop();
  return (*s)->results();
}

}  // namespace

TEST_CASE("a peer that keeps its identity gives no break", "[sync][identity]") {
  rebooting_peer peer;
  peer.ids = {ident(1, 10)};
  auto r = run_session(peer, 4);
  REQUIRE(r.size() == 1);
  CHECK(r[0].breaks.empty());
  REQUIRE(r[0].peer.has_value());
  CHECK(*r[0].peer == ident(1, 10));
  CHECK(segment_starts(r[0]) == std::vector<std::size_t>{0});
  for (const auto& rec : r[0].series) CHECK(rec.segment == 0);
}

TEST_CASE("a guest reboot between series is a reboot break that splits the table", "[sync][identity]") {
  rebooting_peer peer;
  peer.ids = {ident(1, 10), ident(1, 10), ident(2, 11)};  // series 2 answered by another boot
  auto r = run_session(peer, 4);                          // 3 rounds + the last at stop
  REQUIRE(r.size() == 1);
  const auto& v = r[0];
  REQUIRE(v.breaks.size() == 1);
  const auto& b = v.breaks[0];
  CHECK(b.kind == estimate::break_kind::reboot);
  CHECK(estimate::to_string(b.kind) == "reboot");
  CHECK(b.series == 2);
  CHECK(b.table_index == 2);
  REQUIRE(b.before.has_value());
  REQUIRE(b.after.has_value());
  CHECK(*b.before < *b.after);  // initiator times: the last estimate before, the first probe after
  CHECK(b.detail.find("rebooted") != std::string::npos);
  CHECK(b.detail.find(probe::format_boot_id(ident(2, 11).boot_id)) != std::string::npos);
  REQUIRE(v.series.size() == 4);
  CHECK(v.series[0].segment == 0);
  CHECK(v.series[1].segment == 0);
  CHECK(v.series[2].segment == 1);
  CHECK(v.series[3].segment == 1);
  CHECK(segment_starts(v) == std::vector<std::size_t>{0, 2});
  // Each segment on its own is a sorted table with one boot's offset; joined they are not.
  REQUIRE(v.table.size() == 4);
  CHECK(v.table[0].offset.count() < -4'000'000'000);
  CHECK(v.table[2].offset.count() > 800'000'000);
  CHECK(sorted_prefix(std::span<const sync_sample>(v.table).first(2)) == 2);
  CHECK(sorted_prefix(std::span<const sync_sample>(v.table).subspan(2)) == 2);
  CHECK(sorted_prefix(v.table) == 2);
}

TEST_CASE("an agent restart on the same boot (new nonce) is a reboot break too", "[sync][identity]") {
  rebooting_peer peer;
  peer.ids = {ident(1, 10), ident(1, 12)};
  auto r = run_session(peer, 3);
  REQUIRE(r[0].breaks.size() == 1);
  CHECK(r[0].breaks[0].series == 1);
  CHECK(r[0].breaks[0].kind == estimate::break_kind::reboot);
  CHECK(r[0].breaks[0].detail.find("restarted") != std::string::npos);
  CHECK(r[0].series.back().segment == 1);
}

TEST_CASE("identity_break compares boot id and nonce only", "[sync][identity]") {
  auto a = ident(1, 10);
  auto b = a;
  b.clock = "other";  // the clock is checked by the handshake, not here
  CHECK_FALSE(identity_break(a, b).has_value());
  CHECK(identity_break(a, ident(2, 10)).has_value());
  CHECK(identity_break(a, ident(1, 11)).has_value());
}
