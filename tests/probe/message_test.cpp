// Wire protocol codec: layout, round trips and rejection of every kind of bad input.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "tsync/probe/identity.hpp"
#include "tsync/probe/message.hpp"

using namespace tsync::probe;
using tsync::errc;

namespace {

std::vector<std::byte> enc(const message& m) {
  auto v = encode_to_vector(m);
  REQUIRE(v.has_value());
  return *v;
}

std::error_code dec_err(const std::vector<std::byte>& b) {
  auto m = decode(b);
  REQUIRE_FALSE(m.has_value());
  return m.error();
}

std::vector<message> samples() {
  deferred_msg d;
  d.series_id = 7;
  d.last = true;
  d.entries = {{0, -5}, {1, INT64_MIN}, {65535, INT64_MAX}};
  return {start_msg{1, series_flag::pin_vcpu, 339, 3},
          start_ack_msg{1, stamp_mode::deferred},
          probe_msg{0xFFFFFFFFu, 65535},
          reply_msg{2, 4, -1234567890123LL},
          end_msg{2, 339},
          end_ack_msg{2, 338},
          d,
          result_msg{9, 2, -100, -150, -50, 100, 300, 39},
          error_msg{3, static_cast<std::uint32_t>(errc::timed_out), "responder stalled"},
          bye_msg{},
          hello_msg{hello_role::responder,
                    peer_identity{"x86-tsc", time_unit::cycles, 2'903'996'000u,
                                  {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 0xFEDCBA9876543210ull}}};
}

void set_u32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::byte>((v >> (8 * i)) & 0xFFu);
}

}  // namespace

TEST_CASE("every message type survives an encode and decode round trip", "[probe][message]") {
  for (const auto& m : samples()) {
    const auto b = enc(m);
    CHECK(b.size() == encoded_size(m));
    auto back = decode(b);
    REQUIRE(back.has_value());
    CHECK(*back == m);
    CHECK(type_of(*back) == type_of(m));
  }
}

TEST_CASE("the header and integers are little-endian with the documented layout", "[probe][message]") {
  const auto b = enc(reply_msg{0x01020304u, 0x0000FE01u, -2});
  REQUIRE(b.size() == header_size + 16);
  const unsigned char expect[] = {'T', 'S', 'Y', 'N', 2, 4, 0, 0, 16, 0, 0, 0,  // header
                                  4, 3, 2, 1, 0x01, 0xFE, 0x00, 0x00,            // series, probe
                                  0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};  // g = -2
  for (std::size_t i = 0; i < b.size(); ++i) {
    INFO("byte " << i);
    CHECK(std::to_integer<unsigned>(b[i]) == expect[i]);
  }
}

TEST_CASE("every proper prefix of a valid message is reported as truncated", "[probe][message]") {
  for (const auto& m : samples()) {
    const auto b = enc(m);
    for (std::size_t k = 0; k < b.size(); ++k) {
      std::vector<std::byte> p(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(k));
      INFO("type " << to_string(type_of(m)) << " prefix " << k);
      CHECK(dec_err(p) == make_error_code(errc::truncated));
    }
  }
}

TEST_CASE("trailing bytes after the payload are a protocol error", "[probe][message]") {
  auto b = enc(probe_msg{1, 2});
  b.push_back(std::byte{0});
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
}

TEST_CASE("bad magic unknown type and unknown flags are protocol errors", "[probe][message]") {
  const auto good = enc(probe_msg{1, 2});
  auto b = good;
  b[0] = std::byte{'X'};
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
  for (unsigned t : {0u, 12u, 255u}) {
    b = good;
    b[5] = static_cast<std::byte>(t);
    CHECK(dec_err(b) == make_error_code(errc::protocol_error));
  }
  b = good;
  b[6] = std::byte{1};  // last_batch is only valid on deferred
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
  deferred_msg d;
  d.series_id = 1;
  b = enc(d);
  b[6] = std::byte{2};
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
}

TEST_CASE("a different protocol version is reported as unsupported and peek_version names it", "[probe][message]") {
  for (unsigned v : {0u, 1u, 3u, 255u}) {
    auto b = enc(bye_msg{});
    b[4] = static_cast<std::byte>(v);
    CHECK(dec_err(b) == make_error_code(errc::unsupported_version));
    REQUIRE(peek_version(b).has_value());
    CHECK(*peek_version(b) == v);
  }
  auto b = enc(bye_msg{});
  b[0] = std::byte{'X'};
  CHECK_FALSE(peek_version(b).has_value());
  CHECK_FALSE(peek_version(std::span<const std::byte>(b).first(4)).has_value());
  CHECK(version_mismatch_text(1, "agent").find("peer is older (protocol 1)") != std::string::npos);
  CHECK(version_mismatch_text(3, "sync").find("peer is newer (protocol 3)") != std::string::npos);
}

TEST_CASE("a version-1 peer can be answered in version 1, but never with a hello", "[probe][message]") {
  const message e = error_msg{0, static_cast<std::uint32_t>(errc::unsupported_version), "old"};
  std::vector<std::byte> out(encoded_size(e));
  auto n = encode(e, out, 1);
  REQUIRE(n.has_value());
  CHECK(std::to_integer<unsigned>(out[4]) == 1);
  // The version-1 layout of `error` is the version-2 layout: only the version byte differs.
  auto v2 = enc(e);
  out[4] = std::byte{2};
  CHECK(out == v2);
  const message h = hello_msg{};
  std::vector<std::byte> hb(encoded_size(h));
  CHECK(encode(h, hb, 1).error() == make_error_code(errc::unsupported_version));
  CHECK(encode(e, out, 0).error() == make_error_code(errc::unsupported_version));
  CHECK(encode(e, out, 3).error() == make_error_code(errc::unsupported_version));
}

TEST_CASE("hello has the documented layout and strict limits", "[probe][message]") {
  hello_msg h{hello_role::initiator, peer_identity{"mono_raw", time_unit::ns, 0, {}, 0x0102030405060708ull}};
  h.id.boot_id[0] = 0xAB;
  h.id.boot_id[15] = 0xCD;
  const auto b = enc(h);
  REQUIRE(b.size() == header_size + hello_fixed_size + 8);
  CHECK(std::to_integer<unsigned>(b[4]) == 2);
  CHECK(std::to_integer<unsigned>(b[5]) == 11);
  CHECK(std::to_integer<unsigned>(b[8]) == hello_fixed_size + 8);
  const std::size_t p = header_size;
  CHECK(std::to_integer<unsigned>(b[p + 0]) == 0);  // role
  CHECK(std::to_integer<unsigned>(b[p + 1]) == 0);  // unit ns
  CHECK(std::to_integer<unsigned>(b[p + 2]) == 8);  // name length
  CHECK(std::to_integer<unsigned>(b[p + 3]) == 0);  // reserved
  CHECK(std::to_integer<unsigned>(b[p + 12]) == 0xAB);
  CHECK(std::to_integer<unsigned>(b[p + 27]) == 0xCD);
  CHECK(std::to_integer<unsigned>(b[p + 28]) == 0x08);  // nonce, little-endian
  CHECK(std::to_integer<unsigned>(b[p + 35]) == 0x01);
  CHECK(static_cast<char>(b[p + 36]) == 'm');
  // Every byte a peer controls is checked.
  auto bad = [&](std::size_t at, unsigned v) {
    auto c = b;
    c[at] = static_cast<std::byte>(v);
    return dec_err(c);
  };
  CHECK(bad(p + 0, 2) == make_error_code(errc::protocol_error));   // role
  CHECK(bad(p + 1, 2) == make_error_code(errc::protocol_error));   // unit
  CHECK(bad(p + 2, 9) == make_error_code(errc::protocol_error));   // name length vs payload
  CHECK(bad(p + 2, 33) == make_error_code(errc::oversized));       // name length above the limit
  CHECK(bad(p + 3, 1) == make_error_code(errc::protocol_error));   // reserved byte
  CHECK(bad(p + 36, 0x07) == make_error_code(errc::protocol_error));  // non-printable name
  CHECK(bad(p + 4, 1) == make_error_code(errc::protocol_error));   // a TSC rate on a ns clock
  hello_msg big = h;
  big.id.clock.assign(max_clock_name_length + 1, 'c');
  CHECK_FALSE(encode_to_vector(big).has_value());
}

TEST_CASE("boot ids parse and print in the kernel's text form", "[probe][message]") {
  auto id = parse_boot_id("1dfef164-0c6f-40a2-af9e-0e8d553242c1\n");
  REQUIRE(id.has_value());
  CHECK((*id)[0] == 0x1d);
  CHECK((*id)[15] == 0xc1);
  CHECK(format_boot_id(*id) == "1dfef164-0c6f-40a2-af9e-0e8d553242c1");
  CHECK_FALSE(parse_boot_id("1dfef164-0c6f-40a2-af9e-0e8d553242c").has_value());
  CHECK_FALSE(parse_boot_id("1dfef164x0c6f-40a2-af9e-0e8d553242c1").has_value());
  CHECK_FALSE(parse_boot_id("1dfef164-0c6f-40a2-af9e-0e8d553242g1").has_value());
  auto mine = read_boot_id();
  REQUIRE(mine.has_value());  // Linux always has one
  CHECK(*mine != std::array<std::uint8_t, 16>{});
}

TEST_CASE("clock_mismatch refuses different units and TSC rates and names both clocks", "[probe][message]") {
  const peer_identity raw{"mono_raw", time_unit::ns, 0, {}, 1};
  const peer_identity tsc{"x86-tsc", time_unit::cycles, 2'000'000'000u, {}, 2};
  CHECK_FALSE(clock_mismatch(raw, raw).has_value());
  CHECK_FALSE(clock_mismatch(tsc, tsc).has_value());
  auto m = clock_mismatch(raw, tsc);
  REQUIRE(m.has_value());
  CHECK(m->find("host reads 'mono_raw' (ns)") != std::string::npos);
  CHECK(m->find("guest reads 'x86-tsc' (cycles at 2000.000 MHz)") != std::string::npos);
  auto scaled = tsc;
  scaled.tsc_hz = 2'100'000'000u;  // TSC scaling: another rate
  REQUIRE(clock_mismatch(tsc, scaled).has_value());
  CHECK(clock_mismatch(tsc, scaled)->find("rates differ") != std::string::npos);
  auto close = tsc;
  close.tsc_hz = 2'000'100'000u;  // measurement noise (50 ppm)
  CHECK_FALSE(clock_mismatch(tsc, close).has_value());
  // A clock that measures no time, and names tsync does not know but in different units.
  CHECK(clock_mismatch(peer_identity{"counter", time_unit::ns, 0, {}, 1}, raw).has_value());
  CHECK(clock_mismatch(peer_identity{"realtime", time_unit::ns, 0, {}, 1}, peer_identity{"mine", time_unit::cycles, 0, {}, 1})
            .has_value());
  CHECK_FALSE(clock_mismatch(peer_identity{"realtime", time_unit::ns, 0, {}, 1}, raw).has_value());
}

TEST_CASE("a payload length above the limit is oversized before anything is read", "[probe][message]") {
  auto b = enc(bye_msg{});
  set_u32(b, 8, static_cast<std::uint32_t>(max_payload_size + 1));
  CHECK(dec_err(b) == make_error_code(errc::oversized));
  set_u32(b, 8, 0xFFFFFFFFu);
  CHECK(dec_err(b) == make_error_code(errc::oversized));
}

TEST_CASE("a payload length that does not fit the type is a protocol error", "[probe][message]") {
  // A probe with a 16-byte payload (consistent header, wrong size for the type).
  auto b = enc(reply_msg{1, 2, 3});
  b[5] = static_cast<std::byte>(message_type::probe);
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
  // A deferred batch whose count does not match its length.
  deferred_msg d;
  d.series_id = 1;
  d.entries = {{0, 1}, {1, 2}};
  b = enc(d);
  set_u32(b, header_size + 4, 3);
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
  set_u32(b, header_size + 4, 1);
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
}

TEST_CASE("counts and ids above their limits are rejected", "[probe][message]") {
  auto b = enc(start_msg{1, 0, 1, 0});
  set_u32(b, header_size + 8, max_probes_per_series + 1);
  CHECK(dec_err(b) == make_error_code(errc::oversized));
  set_u32(b, header_size + 8, 0);
  CHECK(dec_err(b) == make_error_code(errc::oversized));
  set_u32(b, header_size + 8, 10);
  set_u32(b, header_size + 12, max_vcpu_id + 1);
  CHECK(dec_err(b) == make_error_code(errc::out_of_range));
  set_u32(b, header_size + 12, 0);
  set_u32(b, header_size + 4, 0x80);  // unknown series flag
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));

  b = enc(probe_msg{1, 0});
  set_u32(b, header_size + 4, max_probes_per_series);
  CHECK(dec_err(b) == make_error_code(errc::out_of_range));

  b = enc(end_ack_msg{1, 0});
  set_u32(b, header_size + 4, max_probes_per_series + 1);
  CHECK(dec_err(b) == make_error_code(errc::oversized));

  deferred_msg d;
  d.entries = {{0, 1}};
  b = enc(d);
  set_u32(b, header_size + 4, max_batch_entries + 1);
  CHECK(dec_err(b) == make_error_code(errc::oversized));
  set_u32(b, header_size + 4, 1);
  set_u32(b, header_size + 8, max_probes_per_series);  // entry probe id
  CHECK(dec_err(b) == make_error_code(errc::out_of_range));

  b = enc(start_ack_msg{1, stamp_mode::immediate});
  set_u32(b, header_size + 4, 2);  // unknown stamp mode
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
}

TEST_CASE("error reasons must be short printable text", "[probe][message]") {
  auto b = enc(error_msg{1, 21, "abc"});
  b[header_size + 12] = std::byte{0x07};
  CHECK(dec_err(b) == make_error_code(errc::protocol_error));
  b = enc(error_msg{1, 21, "abc"});
  set_u32(b, header_size + 8, static_cast<std::uint32_t>(max_reason_length + 1));
  CHECK(dec_err(b) == make_error_code(errc::oversized));
  error_msg big{1, 21, std::string(max_reason_length + 1, 'x')};
  std::vector<std::byte> out(encoded_size(big));
  auto n = encode(big, out);
  REQUIRE_FALSE(n.has_value());
  CHECK(n.error() == make_error_code(errc::oversized));
}

TEST_CASE("results with an inverted interval or negative round trip are rejected", "[probe][message]") {
  auto b = enc(result_msg{1, 0, 0, -1, 1, 5, 1, 1});
  std::vector<std::byte> x = b;
  x[header_size + 16] = std::byte{9};  // lo = 9 > hi = 1
  for (std::size_t i = 17; i < 24; ++i) x[header_size + i] = std::byte{0};
  CHECK(dec_err(x) == make_error_code(errc::protocol_error));
  x = b;
  for (std::size_t i = 32; i < 40; ++i) x[header_size + i] = std::byte{0xFF};  // min_rtt = -1
  CHECK(dec_err(x) == make_error_code(errc::protocol_error));
}

TEST_CASE("encoding refuses a buffer that is too small and messages the decoder would reject", "[probe][message]") {
  std::vector<std::byte> small(header_size + 3);
  auto n = encode(probe_msg{1, 2}, small);
  REQUIRE_FALSE(n.has_value());
  CHECK(n.error() == make_error_code(errc::truncated));
  std::vector<std::byte> out(max_encoded_size + 64);
  CHECK_FALSE(encode(start_msg{1, 0, 0, 0}, out).has_value());
  deferred_msg d;
  d.entries.resize(max_batch_entries + 1);
  CHECK_FALSE(encode(d, out).has_value());
  deferred_msg full;
  full.entries.resize(max_batch_entries);
  auto k = encode(full, out);
  REQUIRE(k.has_value());
  CHECK(*k == max_encoded_size);
}

TEST_CASE("randomly mutated messages never decode to something invalid", "[probe][message]") {
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  const auto all = samples();
  for (int iter = 0; iter < 20000; ++iter) {
    auto b = enc(all[static_cast<std::size_t>(iter) % all.size()]);
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      b[rng() % b.size()] = static_cast<std::byte>(rng() & 0xFFu);
    }
    if (rng() % 4 == 0) b.resize(rng() % (b.size() + 1));
    auto m = decode(b);
    if (m) {
      // Whatever decodes must re-encode to the same bytes (the codec is canonical).
      auto again = encode_to_vector(*m);
      REQUIRE(again.has_value());
      CHECK(*again == b);
    }
  }
}
