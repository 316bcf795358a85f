// trace-cmd TIME_SHIFT / TSC2NSEC codec, options framing, trace.dat reader
// and the conversion to sync tables.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tsync/io/table_csv.hpp"
#include "error_kind.hpp"
#include "tsync/io/tracecmd.hpp"

namespace {

using namespace tsync::io;
using bytes = std::vector<std::byte>;

using tsync_interop_test::is;
using tsync_interop_test::kind;
namespace k {
constexpr kind truncated{tsync::errc::truncated, "truncated"};
constexpr kind count_exceeds_payload{tsync::errc::oversized, "count exceeds the payload"};
constexpr kind trailing_bytes{tsync::errc::bad_format, "trailing bytes"};
constexpr kind no_cpus{tsync::errc::empty_input, "no CPUs (trace-cmd bug B16)"};
constexpr kind zero_samples{tsync::errc::empty_input, "a CPU with zero samples (trace-cmd bug B18)"};
constexpr kind inconsistent_counts{tsync::errc::bad_format, "inconsistent per-CPU counts (trace-cmd bug B7)"};
constexpr kind unsorted_times{tsync::errc::unsorted_input, "sample times are not sorted"};
constexpr kind bad_size{tsync::errc::bad_format, "wrong payload size"};
constexpr kind missing_cpu{tsync::errc::not_found, "no entry for this CPU (trace-cmd bug B5)"};
constexpr kind time_out_of_range{tsync::errc::out_of_range, "sample time above 2^63 - 1"};
constexpr kind bad_fraction{tsync::errc::bad_frac_bits, "fraction bits above 63"};
constexpr kind zero_scaling{tsync::errc::zero_ratio, "scaling ratio is zero"};
constexpr kind scaled_interpolation{tsync::errc::unsupported, "scaled sample with the interpolate flag"};
constexpr kind zero_mult{tsync::errc::invalid_argument, "TSC2NSEC multiplier is zero"};
constexpr kind bad_shift{tsync::errc::invalid_argument, "TSC2NSEC shift above 63"};
constexpr kind bad_magic{tsync::errc::bad_format, "not a trace.dat file"};
constexpr kind unsupported_version{tsync::errc::unsupported_version, "unsupported trace.dat version"};
constexpr kind compressed_section{tsync::errc::unsupported, "compressed options section"};
constexpr kind bad_offset{tsync::errc::bad_format, "bad section offset"};
constexpr kind duplicate_option{tsync::errc::duplicate_id, "option present twice"};
constexpr kind missing_done{tsync::errc::truncated, "options list without its end marker"};
constexpr kind io_error{tsync::errc::io_error, "I/O error"};
}  // namespace k

// A little writer for hand-made inputs (independent of the encoder).
struct writer {
  byte_order o = byte_order::little;
  bytes b;
  writer& n(std::uint64_t v, std::size_t w) {
    for (std::size_t i = 0; i < w; ++i) {
      const std::size_t sh = 8 * (o == byte_order::little ? i : w - 1 - i);
      b.push_back(static_cast<std::byte>((v >> sh) & 0xFFu));
    }
    return *this;
  }
  writer& u16(std::uint64_t v) { return n(v, 2); }
  writer& u32(std::uint64_t v) { return n(v, 4); }
  writer& u64(std::uint64_t v) { return n(v, 8); }
  writer& str(const std::string& s, bool nul = true) {
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    if (nul) b.push_back(std::byte{0});
    return *this;
  }
  writer& raw(const bytes& x) {
    b.insert(b.end(), x.begin(), x.end());
    return *this;
  }
};

bytes from_hex(std::initializer_list<unsigned> v) {
  bytes b;
  for (unsigned x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

time_shift sample_option() {
  time_shift ts;
  ts.peer_trace_id = 0x1122334455667788u;
  ts.flags = 0;
  ts.cpus = {{{100, -5000, 1, 0}, {200, -4000, 1, 0}}, {{150, 7, 281474976710656u, 48}}};
  return ts;
}

time_shift random_option(std::mt19937_64& rng, bool fraction) {
  time_shift ts;
  ts.peer_trace_id = rng();
  ts.flags = static_cast<std::uint32_t>(rng());
  ts.has_fraction = fraction;
  const std::size_t ncpu = 1 + rng() % 5;
  ts.cpus.resize(ncpu);
  for (auto& v : ts.cpus) {
    const std::size_t c = 1 + rng() % 6;
    std::uint64_t t = rng() >> (rng() % 64);
    for (std::size_t i = 0; i < c; ++i) {
      time_shift_sample s;
      s.time = t;
      s.offset = static_cast<std::int64_t>(rng());
      s.scaling = rng();
      s.fraction = fraction ? rng() % 80 : 0;
      v.push_back(s);
      const std::uint64_t step = rng() % 1000;
      t = t + step < t ? t : t + step;  // stay sorted, no wrap
    }
  }
  return ts;
}

tsync::byte_error decode_error(const bytes& b, byte_order o = byte_order::little) {
  auto r = decode_time_shift(b, o);
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().what());
  CHECK_FALSE(r.error().message.empty());
  return r.error();
}

// The 16-byte header of a TIME_SHIFT.
writer header(std::uint32_t ncpu, std::uint32_t flags = 0, byte_order o = byte_order::little) {
  writer w{o, {}};
  w.u64(7).u32(flags).u32(ncpu);
  return w;
}

}  // namespace

TEST_CASE("A hand-written little-endian TIME_SHIFT decodes field by field") {
  const bytes b = from_hex({
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  // peer trace id
      0x01, 0x00, 0x00, 0x00,                          // flags: interpolate
      0x01, 0x00, 0x00, 0x00,                          // 1 CPU
      0x02, 0x00, 0x00, 0x00,                          // 2 samples
      0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // time 16
      0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // time 256
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // offset -1
      0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // offset 5
      0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // scaling 1
      0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // scaling 1
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fraction 0
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fraction 0
  });
  auto ts = decode_time_shift(b, byte_order::little);
  REQUIRE(ts.has_value());
  CHECK(ts->peer_trace_id == 0x1122334455667788u);
  CHECK(ts->flags == 1);
  CHECK(ts->interpolate());
  CHECK(ts->has_fraction);
  REQUIRE(ts->cpus.size() == 1);
  REQUIRE(ts->cpus[0].size() == 2);
  CHECK(ts->cpus[0][0] == time_shift_sample{16, -1, 1, 0});
  CHECK(ts->cpus[0][1] == time_shift_sample{256, 5, 1, 0});
  auto again = encode_time_shift(*ts, byte_order::little);
  REQUIRE(again.has_value());
  CHECK(*again == b);
}

TEST_CASE("A hand-written big-endian TIME_SHIFT without fraction bits decodes field by field") {
  const bytes b = from_hex({
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A,  // peer trace id 42
      0x00, 0x00, 0x00, 0x00,                          // flags 0: step
      0x00, 0x00, 0x00, 0x01,                          // 1 CPU
      0x00, 0x00, 0x00, 0x01,                          // 1 sample
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,  // time 258
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,  // offset -2
      0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,  // scaling 2^47
  });
  auto ts = decode_time_shift(b, byte_order::big);
  REQUIRE(ts.has_value());
  CHECK(ts->peer_trace_id == 42);
  CHECK_FALSE(ts->interpolate());
  CHECK_FALSE(ts->has_fraction);
  REQUIRE(ts->cpus.size() == 1);
  CHECK(ts->cpus[0] == std::vector<time_shift_sample>{{258, -2, std::uint64_t{1} << 47, 0}});
  // The same bytes read little-endian are a different, invalid option.
  CHECK_FALSE(decode_time_shift(b, byte_order::little).has_value());
  auto again = encode_time_shift(*ts, byte_order::big);
  REQUIRE(again.has_value());
  CHECK(*again == b);
}

TEST_CASE("A hand-written TSC2NSEC decodes in both byte orders and keeps a multiplier above 2^31 unsigned") {
  const bytes le = from_hex({0x00, 0x00, 0x00, 0xA0, 0x1F, 0x00, 0x00, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0});
  const bytes be = from_hex({0xA0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0x07});
  for (auto [b, o] : {std::pair{le, byte_order::little}, std::pair{be, byte_order::big}}) {
    auto t = decode_tsc2nsec(b, o);
    REQUIRE(t.has_value());
    CHECK(t->mult == 2684354560u);  // 800 MHz: 1.25 ns per cycle (trace-cmd sign-extends this, B13)
    CHECK(t->shift == 31);
    CHECK(t->offset == 7);
    CHECK(t->to_ns(800) == 1007);
    CHECK(t->to_ns(std::uint64_t{1} << 40) == 7 + (std::uint64_t{1} << 40) / 4 * 5);
    auto again = encode_tsc2nsec(*t, o);
    REQUIRE(again.has_value());
    CHECK(*again == b);
  }
}

TEST_CASE("TSC2NSEC errors are named") {
  CHECK(is(decode_tsc2nsec(bytes(15), byte_order::little).error(), k::truncated));
  CHECK(is(decode_tsc2nsec(bytes(17), byte_order::little).error(), k::bad_size));
  CHECK(is(decode_tsc2nsec(bytes(16), byte_order::little).error(), k::zero_mult));
  writer w;
  w.u32(1000).u32(64).u64(0);
  CHECK(is(decode_tsc2nsec(w.b, byte_order::little).error(), k::bad_shift));
  CHECK(is(encode_tsc2nsec(tsc2nsec{0, 1, 0}, byte_order::little).error(), k::zero_mult));
  CHECK(is(encode_tsc2nsec(tsc2nsec{1, 64, 0}, byte_order::little).error(), k::bad_shift));
}

TEST_CASE("Random TIME_SHIFT options round-trip in both byte orders") {
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    const auto ts = random_option(rng, i % 3 != 0);
    for (auto o : {byte_order::little, byte_order::big}) {
      auto b = encode_time_shift(ts, o);
      REQUIRE(b.has_value());
      CHECK(b->size() == encoded_size(ts));
      auto back = decode_time_shift(*b, o);
      REQUIRE(back.has_value());
      CHECK(*back == ts);
    }
    const tsc2nsec t{static_cast<std::uint32_t>(rng() | 1u), static_cast<std::uint32_t>(rng() % 64), rng()};
    for (auto o : {byte_order::little, byte_order::big}) {
      auto b = encode_tsc2nsec(t, o);
      REQUIRE(b.has_value());
      auto back = decode_tsc2nsec(*b, o);
      REQUIRE(back.has_value());
      CHECK(*back == t);
    }
  }
}

TEST_CASE("Every prefix of a valid TIME_SHIFT is rejected cleanly") {
  auto ts = sample_option();
  for (bool fraction : {false, true}) {
    ts.has_fraction = fraction;
    if (!fraction)
      for (auto& v : ts.cpus)
        for (auto& s : v) s.fraction = 0;
    for (auto o : {byte_order::little, byte_order::big}) {
      auto b = encode_time_shift(ts, o);
      REQUIRE(b.has_value());
      const std::size_t without_fraction = b->size() - (fraction ? 8 * 3 : 0);
      for (std::size_t n = 0; n < b->size(); ++n) {
        INFO("prefix " << n << " fraction " << fraction);
        const bytes prefix(b->begin(), b->begin() + static_cast<std::ptrdiff_t>(n));
        auto r = decode_time_shift(prefix, o);
        if (fraction && n == without_fraction) {
          // Exactly the old layout: valid, with no fraction bits.
          REQUIRE(r.has_value());
          CHECK_FALSE(r->has_fraction);
          continue;
        }
        REQUIRE_FALSE(r.has_value());
        const auto c = r.error().code;
        CHECK((c == tsync::errc::truncated || c == tsync::errc::oversized || c == tsync::errc::empty_input ||
               c == tsync::errc::bad_format));
      }
      // And the whole thing decodes.
      CHECK(decode_time_shift(*b, o).has_value());
    }
  }
}

TEST_CASE("A TIME_SHIFT shorter than its header is truncated") {
  CHECK(is(decode_error(bytes(15)), k::truncated));
  auto w = header(1);
  w.u32(1).u64(1).u64(2);  // the scaling array is missing
  CHECK(is(decode_error(w.b), k::count_exceeds_payload));
  auto w2 = header(2);
  w2.u32(1).u64(1).u64(2).u64(1);  // CPU 1's count is missing
  CHECK(is(decode_error(w2.b), k::truncated));
}

TEST_CASE("A hostile CPU count is rejected before any allocation") {
  auto w = header(0xFFFFFFFFu);
  w.u32(1).u64(1).u64(2).u64(1);
  auto r = decode_time_shift(w.b, byte_order::little);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::count_exceeds_payload));
  CHECK(r.error().offset == 12);
  CHECK(r.error().message.find("4294967295") != std::string::npos);
}

TEST_CASE("A hostile sample count is rejected before any allocation") {
  auto w = header(1);
  w.u32(0xFFFFFFFFu).u64(1).u64(2).u64(1);
  auto r = decode_time_shift(w.b, byte_order::little);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::count_exceeds_payload));
  CHECK(r.error().offset == 16);
}

TEST_CASE("Bytes after the fraction arrays are trailing bytes") {
  auto b = encode_time_shift(sample_option(), byte_order::little);
  REQUIRE(b.has_value());
  b->push_back(std::byte{0});
  // One extra byte: the fraction arrays are cut (8 * 3 + 1 bytes left is not a whole layout).
  CHECK(is(decode_error(*b), k::trailing_bytes));
  for (int i = 0; i < 8; ++i) b->push_back(std::byte{0});
  CHECK(is(decode_error(*b), k::trailing_bytes));
}

TEST_CASE("Partial fraction arrays are truncated") {
  auto w = header(1);
  w.u32(2).u64(1).u64(2).u64(0).u64(0).u64(1).u64(1).u64(0);  // 1 of 2 fraction entries
  CHECK(is(decode_error(w.b), k::truncated));
}

TEST_CASE("A TIME_SHIFT with no CPUs is rejected as trace-cmd bug B16") {
  auto r = decode_time_shift(header(0).b, byte_order::little);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::no_cpus));
  CHECK(r.error().message.find("B16") != std::string::npos);
  time_shift empty;
  CHECK(is(encode_time_shift(empty, byte_order::little).error(), k::no_cpus));
}

TEST_CASE("A CPU with zero samples is rejected as trace-cmd bug B18") {
  auto w = header(1);
  w.u32(0);
  auto r = decode_time_shift(w.b, byte_order::little);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::zero_samples));
  CHECK(r.error().message.find("B18") != std::string::npos);
  auto ts = sample_option();
  ts.cpus[1].clear();
  CHECK(is(encode_time_shift(ts, byte_order::little).error(), k::zero_samples));
}

TEST_CASE("The layout of trace-cmd bug B7 is recovered and named") {
  // Two vCPUs with 2 and 3 samples, written the way trace-cmd's writer does:
  // both count fields hold the last count (3), the arrays have the true
  // lengths, and both fraction arrays have 3 entries.
  for (auto o : {byte_order::little, byte_order::big}) {
    auto w = header(2, 0, o);
    w.u32(3).u64(10).u64(20).u64(100).u64(100).u64(1).u64(1);
    w.u32(3).u64(10).u64(20).u64(30).u64(200).u64(200).u64(200).u64(1).u64(1).u64(1);
    for (int i = 0; i < 6; ++i) w.u64(0);
    auto r = decode_time_shift(w.b, o);
    REQUIRE(r.has_value());
    REQUIRE(r->cpus.size() == 2);
    CHECK(r->cpus[0] == std::vector<time_shift_sample>{{10, 100, 1, 0}, {20, 100, 1, 0}});
    CHECK(r->cpus[1] == std::vector<time_shift_sample>{{10, 200, 1, 0}, {20, 200, 1, 0}, {30, 200, 1, 0}});
    REQUIRE(r->repairs.size() == 1);
    CHECK(r->repairs[0].find("B7") != std::string::npos);
    CHECK(r->repairs[0].find("2, 3") != std::string::npos);
  }
}

TEST_CASE("B7 recovery finds the counts of several CPUs from their time order") {
  // Four vCPUs with 5, 1, 4 and 2 samples; every count field holds 2.
  const std::vector<std::vector<std::uint64_t>> times{{1, 2, 3, 4, 5}, {7}, {2, 4, 6, 8}, {100, 200}};
  auto w = header(4);
  std::int64_t off = -1000;
  for (const auto& t : times) {
    w.u32(2);
    for (auto x : t) w.u64(x);
    for (std::size_t i = 0; i < t.size(); ++i) w.u64(static_cast<std::uint64_t>(off--));
    for (std::size_t i = 0; i < t.size(); ++i) w.u64(1);
  }
  for (int i = 0; i < 4 * 2; ++i) w.u64(0);
  auto r = decode_time_shift(w.b, byte_order::little);
  INFO((r ? std::string() : r.error().what()));
  REQUIRE(r.has_value());
  REQUIRE(r->cpus.size() == 4);
  for (std::size_t c = 0; c < 4; ++c) {
    REQUIRE(r->cpus[c].size() == times[c].size());
    for (std::size_t i = 0; i < times[c].size(); ++i) CHECK(r->cpus[c][i].time == times[c][i]);
  }
  CHECK(r->cpus[2][0].offset == -1000 - 6);
  REQUIRE(r->repairs.size() == 1);
  CHECK(r->repairs[0].find("5, 1, 4, 2") != std::string::npos);
}

TEST_CASE("An ambiguous B7 split is refused with both candidates named") {
  // Three vCPUs with 2, 1 and 2 samples whose every word is 2, the last count:
  // the arrays split as 1,2,2 just as well as 2,1,2.
  auto w = header(3);
  for (std::uint64_t c : {std::uint64_t{2}, std::uint64_t{1}, std::uint64_t{2}}) {
    w.u32(2);
    for (std::uint64_t i = 0; i < 3 * c; ++i) w.u64(2);
  }
  for (int i = 0; i < 3 * 2; ++i) w.u64(0);
  auto r = decode_time_shift(w.b, byte_order::little);
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().what());
  CHECK(is(r.error(), k::inconsistent_counts));
  CHECK(r.error().message.find("ambiguous") != std::string::npos);
  CHECK(r.error().message.find("1, 2, 2") != std::string::npos);
  CHECK(r.error().message.find("2, 1, 2") != std::string::npos);
}

TEST_CASE("B7 recovery of a hostile payload ends quickly") {
  // 64 CPUs, every word equal to the count: every split looks consistent.
  const std::uint64_t n = 64, k = 1;
  auto w = header(static_cast<std::uint32_t>(n));
  const std::uint64_t total = 4000;
  for (std::uint64_t cpu = 0; cpu < n; ++cpu) {
    w.u32(static_cast<std::uint32_t>(k));
    const std::uint64_t c = cpu + 1 == n ? k : (cpu == 0 ? total - k - (n - 2) : 1);
    for (std::uint64_t i = 0; i < 3 * c; ++i) w.u64(k);
  }
  for (std::uint64_t i = 0; i < n * k; ++i) w.u64(0);
  auto r = decode_time_shift(w.b, byte_order::little);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::inconsistent_counts));
}

TEST_CASE("Decreasing sample times are rejected") {
  auto w = header(1);
  w.u32(2).u64(200).u64(100).u64(0).u64(0).u64(1).u64(1);
  auto r = decode_time_shift(w.b, byte_order::little);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::unsorted_times));
  auto ts = sample_option();
  std::swap(ts.cpus[0][0], ts.cpus[0][1]);
  CHECK(is(encode_time_shift(ts, byte_order::little).error(), k::unsorted_times));
  // Equal times are allowed.
  auto w2 = header(1);
  w2.u32(2).u64(100).u64(100).u64(0).u64(5).u64(1).u64(1);
  CHECK(decode_time_shift(w2.b, byte_order::little).has_value());
}

TEST_CASE("Conversion to sync tables matches sync_table make on the same samples") {
  using tsync::correct::correction_mode;
  using tsync::correct::outside_policy;
  using tsync::correct::sync_table;
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 50; ++round) {
    time_shift ts;
    ts.flags = round % 2 == 0 ? time_shift_flag_interpolate : 0;
    ts.cpus.resize(2);
    for (auto& v : ts.cpus) {
      std::int64_t t = static_cast<std::int64_t>(rng() % 1000000);
      for (int i = 0; i < 1 + static_cast<int>(rng() % 5); ++i) {
        time_shift_sample s;
        s.time = static_cast<std::uint64_t>(t);
        s.offset = static_cast<std::int64_t>(rng() % 2000000) - 1000000;
        if (ts.flags == 0 && rng() % 2 == 0) {
          s.scaling = (std::uint64_t{1} << 48) / 3 * 2;  // a 2/3 KVM ratio
          s.fraction = 48;
        }
        v.push_back(s);
        t += 1 + static_cast<std::int64_t>(rng() % 100000);
      }
    }
    const auto mode = ts.flags != 0 ? correction_mode::interpolate : correction_mode::step;
    CHECK(mode_of(ts) == mode);
    for (std::size_t cpu = 0; cpu < 2; ++cpu) {
      std::vector<tsync::sync_sample> expect;
      for (const auto& s : ts.cpus[cpu]) {
        tsync::sync_sample x;
        x.guest_time = tsync::at_ns<tsync::guest>(static_cast<std::int64_t>(s.time));
        x.offset = tsync::guest_to_host(s.offset);
        x.ratio = s.scaling;
        x.frac_bits = static_cast<std::uint8_t>(s.fraction);
        expect.push_back(x);
      }
      auto ref = sync_table::make(expect, mode, outside_policy::clamp);
      REQUIRE(ref.has_value());
      auto got = to_sync_table(ts, cpu, outside_policy::clamp);
      REQUIRE(got.has_value());
      REQUIRE(got->samples().size() == ref->samples().size());
      for (std::size_t i = 0; i < ref->samples().size(); ++i) CHECK(got->samples()[i] == ref->samples()[i]);
      CHECK(got->options().mode == mode);
      for (int k = 0; k < 50; ++k) {
        const auto g = tsync::at_ns<tsync::guest>(static_cast<std::int64_t>(rng() % 2000000));
        auto a = got->correct(g);
        auto b = ref->correct(g);
        REQUIRE(a.has_value() == b.has_value());
        if (a) CHECK(*a == *b);
      }
    }
    auto all = to_sync_tables(ts, outside_policy::clamp);
    REQUIRE(all.has_value());
    CHECK(all->size() == 2);
  }
}

TEST_CASE("A single scaled sample is applied with its scaling unlike trace-cmd bug B3") {
  time_shift ts;
  ts.cpus = {{{0, 0, std::uint64_t{1} << 47, 48}}};  // ratio 1/2: the guest counts at half the host rate
  auto t = to_sync_table(ts, 0);
  REQUIRE(t.has_value());
  auto h = t->correct(tsync::at_ns<tsync::guest>(1000));
  REQUIRE(h.has_value());
  CHECK(*h == tsync::at_ns<tsync::host>(2000));  // trace-cmd would return 1000 (it ignores scaling with one sample)
}

TEST_CASE("A CPU missing from the option is an explicit error as in trace-cmd bug B5") {
  const auto ts = sample_option();
  auto r = to_sync_table(ts, 2);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::missing_cpu));
  CHECK(r.error().code == tsync::errc::not_found);
  CHECK(is(to_sync_samples(ts, 5).error(), k::missing_cpu));
}

TEST_CASE("Sample values a sync table cannot hold are named") {
  auto ts = sample_option();
  ts.cpus[0][1].time = std::uint64_t{1} << 63;
  CHECK(is(to_sync_table(ts, 0).error(), k::time_out_of_range));
  ts = sample_option();
  ts.cpus[1][0].fraction = 64;
  CHECK(is(to_sync_table(ts, 1).error(), k::bad_fraction));
  ts = sample_option();
  ts.cpus[0][0].scaling = 0;
  CHECK(is(to_sync_table(ts, 0).error(), k::zero_scaling));
  ts = sample_option();
  ts.flags = time_shift_flag_interpolate;
  CHECK(to_sync_table(ts, 0).has_value());
  CHECK(to_sync_table(ts, 1).has_value());  // 2^48 with 48 fraction bits is unscaled
  ts.cpus[1][0].scaling = std::uint64_t{1} << 47;
  CHECK(is(to_sync_table(ts, 1).error(), k::scaled_interpolation));
}

TEST_CASE("The table CSV text is read back by the table reader") {
  const auto ts = sample_option();
  auto samples = to_sync_samples(ts, 1);
  REQUIRE(samples.has_value());
  const std::string csv = to_table_csv(*samples, mode_of(ts));
  CHECK(csv.find("--mode step") != std::string::npos);
  std::istringstream in(csv);
  auto t = tsync::io::load_table_csv(in, {tsync::correct::correction_mode::step, {}});
  REQUIRE(t.has_value());
  REQUIRE(t->size() == 1);
  CHECK(t->samples()[0] == (*samples)[0]);
}

TEST_CASE("The options cursor walks v6 and v7 lists and stops at the end marker") {
  for (auto o : {byte_order::little, byte_order::big}) {
    bytes list;
    const bytes a = {std::byte{1}, std::byte{2}, std::byte{3}};
    append_option(list, 5, a, o);
    append_option(list, 9, {}, o);
    bytes v7 = list;
    append_options_end(list, o, option_framing::v6);
    append_options_end(v7, o, option_framing::v7, 4242);
    {
      option_cursor c(list, o, option_framing::v6);
      auto x = c.next();
      REQUIRE(x.has_value());
      REQUIRE(x->has_value());
      CHECK((*x)->id == 5);
      CHECK((*x)->offset == 0);
      CHECK(bytes((*x)->payload.begin(), (*x)->payload.end()) == a);
      auto y = c.next();
      REQUIRE((y.has_value() && y->has_value()));
      CHECK((*y)->id == 9);
      CHECK((*y)->payload.empty());
      auto z = c.next();
      REQUIRE(z.has_value());
      CHECK_FALSE(z->has_value());
      CHECK(c.done());
      CHECK(c.position() == list.size());
    }
    {
      option_cursor c(v7, o, option_framing::v7);
      int n = 0;
      while (true) {
        auto x = c.next();
        REQUIRE(x.has_value());
        if (!*x) break;
        ++n;
      }
      CHECK(n == 2);
      CHECK(c.next_section() == 4242);
      CHECK(c.position() == v7.size());
    }
  }
}

TEST_CASE("The options cursor names a cut option a missing end and a bad DONE") {
  bytes list;
  append_option(list, 5, bytes(4), byte_order::little);
  {
    option_cursor c(list, byte_order::little, option_framing::v6);
    REQUIRE(c.next().has_value());
    CHECK(is(c.next().error(), k::missing_done));
    CHECK(is(c.next().error(), k::missing_done));  // stays failed
  }
  {
    const bytes cut(list.begin(), list.end() - 1);
    option_cursor c(cut, byte_order::little, option_framing::v6);
    CHECK(is(c.next().error(), k::truncated));
  }
  {
    writer w;
    w.u16(0).u32(4).u32(0);
    option_cursor c(w.b, byte_order::little, option_framing::v7);
    CHECK(is(c.next().error(), k::bad_size));
  }
  {
    writer w;
    w.u16(12).u32(0xFFFFFFFFu);
    option_cursor c(w.b, byte_order::little, option_framing::v6);
    CHECK(is(c.next().error(), k::truncated));
  }
}

TEST_CASE("Sync options are read from a list and a second TIME_SHIFT is a duplicate") {
  const auto ts = sample_option();
  const auto tsb = encode_time_shift(ts, byte_order::big);
  const auto tcb = encode_tsc2nsec(tsc2nsec{715828121, 31, 0}, byte_order::big);
  REQUIRE((tsb && tcb));
  bytes list;
  append_option(list, 1, bytes(3), byte_order::big);
  append_option(list, option_time_shift, *tsb, byte_order::big);
  append_option(list, option_tsc2nsec, *tcb, byte_order::big);
  bytes dup = list;
  append_options_end(list, byte_order::big, option_framing::v6);
  auto r = read_sync_options(list, byte_order::big, option_framing::v6);
  REQUIRE(r.has_value());
  CHECK(r->option_count == 3);
  REQUIRE(r->time_shift_option.has_value());
  CHECK(*r->time_shift_option == ts);
  REQUIRE(r->tsc2nsec_option.has_value());
  CHECK(r->tsc2nsec_option->mult == 715828121u);
  append_option(dup, option_time_shift, *tsb, byte_order::big);
  append_options_end(dup, byte_order::big, option_framing::v6);
  CHECK(is(read_sync_options(dup, byte_order::big, option_framing::v6).error(), k::duplicate_option));
  // A bad payload inside a list reports the file offset of the bad field.
  bytes bad;
  append_option(bad, option_time_shift, header(0).b, byte_order::little);
  append_options_end(bad, byte_order::little, option_framing::v6);
  auto e = read_sync_options(bad, byte_order::little, option_framing::v6);
  REQUIRE_FALSE(e.has_value());
  CHECK(is(e.error(), k::no_cpus));
  CHECK(e.error().offset == 6 + 12);
}

namespace {

// A minimal v6 trace.dat: the fixed header sections (small, with one ftrace
// format and one event system), then the options list and "flyrecord".
bytes make_v6(byte_order o, const bytes& options_list, bool with_options = true) {
  writer w{o, {}};
  w.raw(from_hex({0x17, 0x08, 0x44})).str("tracing", false).str("6");
  w.b.push_back(std::byte{o == byte_order::little ? std::uint8_t{0} : std::uint8_t{1}});
  w.b.push_back(std::byte{8});
  w.u32(4096);
  w.str("header_page").u64(3).str("abc", false);
  w.str("header_event").u64(2).str("de", false);
  w.u32(1).u64(4).str("fmt1", false);                       // one ftrace format
  w.u32(1).str("sched").u32(2).u64(1).str("x", false).u64(0);  // one system, two events
  w.u32(5).str("kall", false).b.push_back(std::byte{0});
  w.u32(0);                                                 // printk
  w.u64(3).str("1 a", false);                               // cmdlines
  w.u32(2);                                                 // CPUs
  if (with_options) {
    w.str("options  ", true);
    w.raw(options_list);
  }
  w.str("flyrecord", true);
  w.u64(0).u64(0).u64(0).u64(0);
  return w.b;
}

// A minimal v7 trace.dat: header, then options sections at the given layout.
struct v7_file {
  byte_order o;
  writer w;
  explicit v7_file(byte_order order) : o(order), w{order, {}} {
    w.raw(from_hex({0x17, 0x08, 0x44})).str("tracing", false).str("7");
    w.b.push_back(std::byte{o == byte_order::little ? std::uint8_t{0} : std::uint8_t{1}});
    w.b.push_back(std::byte{8});
    w.u32(4096);
    w.str("none").str("");
  }
  std::size_t offset_field = 0;
  void first_offset(std::uint64_t v) {
    offset_field = w.b.size();
    w.u64(v);
  }
  // An options section; returns its offset.
  std::size_t section(const bytes& options_list, std::uint16_t flags = 0, std::uint16_t id = 0) {
    const std::size_t at = w.b.size();
    w.u16(id).u16(flags).u32(0).u64(options_list.size());
    w.raw(options_list);
    return at;
  }
  void patch_u64(std::size_t at, std::uint64_t v) {
    writer p{o, {}};
    p.u64(v);
    for (std::size_t i = 0; i < 8; ++i) w.b[at + i] = p.b[i];
  }
};

}  // namespace

TEST_CASE("A v6 trace.dat yields its TIME_SHIFT and TSC2NSEC in both byte orders") {
  for (auto o : {byte_order::little, byte_order::big}) {
    const auto ts = sample_option();
    bytes list;
    append_option(list, 8, bytes(4), o);
    append_option(list, option_time_shift, *encode_time_shift(ts, o), o);
    append_option(list, option_tsc2nsec, *encode_tsc2nsec(tsc2nsec{2684354560u, 31, 0}, o), o);
    append_options_end(list, o, option_framing::v6);
    const auto file = make_v6(o, list);
    auto r = read_trace_dat(file);
    REQUIRE(r.has_value());
    CHECK(r->version == 6);
    CHECK(r->order == o);
    CHECK(r->long_size == 8);
    CHECK(r->page_size == 4096);
    CHECK(r->options.option_count == 3);
    REQUIRE(r->options.time_shift_option.has_value());
    CHECK(*r->options.time_shift_option == ts);
    REQUIRE(r->options.tsc2nsec_option.has_value());
    CHECK(r->options.tsc2nsec_option->mult == 2684354560u);

    // Every prefix of the file up to the end of the options is an error, never a crash.
    const std::size_t options_end = file.size() - 10 - 32;
    for (std::size_t n = 0; n < options_end; ++n) {
      const bytes prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
      INFO("prefix " << n);
      CHECK_FALSE(read_trace_dat(prefix).has_value());
    }
  }
  // A v6 file without options has neither.
  auto none = read_trace_dat(make_v6(byte_order::little, {}, false));
  REQUIRE(none.has_value());
  CHECK_FALSE(none->options.time_shift_option.has_value());
  CHECK_FALSE(none->options.tsc2nsec_option.has_value());
}

TEST_CASE("A v7 trace.dat yields the options of every chained section") {
  for (auto o : {byte_order::little, byte_order::big}) {
    const auto ts = sample_option();
    v7_file f(o);
    f.first_offset(0);
    f.w.raw(bytes(7));  // something else in between
    bytes first;
    append_option(first, 16, bytes(8), o);
    append_option(first, option_tsc2nsec, *encode_tsc2nsec(tsc2nsec{715828121, 31, 0}, o), o);
    const std::size_t done_at = first.size() + 6;  // DONE payload offset within the list
    append_options_end(first, o, option_framing::v7, 0);
    const std::size_t s1 = f.section(first);
    f.patch_u64(f.offset_field, s1);
    bytes second;
    append_option(second, option_time_shift, *encode_time_shift(ts, o), o);
    append_options_end(second, o, option_framing::v7, 0);
    const std::size_t s2 = f.section(second);
    f.patch_u64(s1 + 16 + done_at, s2);
    auto r = read_trace_dat(f.w.b);
    REQUIRE(r.has_value());
    CHECK(r->version == 7);
    CHECK(r->compression == "none");
    CHECK(r->options.option_count == 3);
    REQUIRE(r->options.time_shift_option.has_value());
    CHECK(*r->options.time_shift_option == ts);
    REQUIRE(r->options.tsc2nsec_option.has_value());
    CHECK(r->options.tsc2nsec_option->mult == 715828121u);

    // A loop back to the first section is caught.
    auto looped = f;
    looped.patch_u64(s2 + 16 + second.size() - 8, s1);
    CHECK(is(read_trace_dat(looped.w.b).error(), k::bad_offset));
    // An offset past the end of the file.
    auto past = f;
    past.patch_u64(past.offset_field, past.w.b.size() + 100);
    CHECK(is(read_trace_dat(past.w.b).error(), k::bad_offset));
    // Every prefix is an error, never a crash.
    for (std::size_t n = 0; n < f.w.b.size(); ++n) {
      const bytes prefix(f.w.b.begin(), f.w.b.begin() + static_cast<std::ptrdiff_t>(n));
      INFO("prefix " << n);
      CHECK_FALSE(read_trace_dat(prefix).has_value());
    }
  }
}

TEST_CASE("An unlinked v7 TIME_SHIFT section is found and used only when asked") {
  for (auto o : {byte_order::little, byte_order::big}) {
    const auto ts = sample_option();
    v7_file f(o);
    f.first_offset(0);
    bytes first;
    append_option(first, option_tsc2nsec, *encode_tsc2nsec(tsc2nsec{715828121, 31, 0}, o), o);
    append_options_end(first, o, option_framing::v7, 0);
    const std::size_t s1 = f.section(first);
    f.patch_u64(f.offset_field, s1);
    f.w.raw(bytes(13));  // event data in between
    bytes second;
    append_option(second, option_time_shift, *encode_time_shift(ts, o), o);
    append_options_end(second, o, option_framing::v7, 0);
    const std::size_t s2 = f.section(second);  // written, but the first DONE still says 0
    f.w.raw(bytes(5));
    auto r = read_trace_dat(f.w.b);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->options.time_shift_option.has_value());
    REQUIRE(r->options.unlinked_time_shift.has_value());
    CHECK(*r->options.unlinked_time_shift == ts);
    CHECK(r->options.unlinked_time_shift_at == s2);
    dat_read_options ro;
    ro.use_unlinked_time_shift = true;
    auto used = read_trace_dat(f.w.b, ro);
    REQUIRE(used.has_value());
    REQUIRE(used->options.time_shift_option.has_value());
    CHECK(*used->options.time_shift_option == ts);
    // Once linked, it is the chain's and no longer reported as unlinked.
    f.patch_u64(s1 + 16 + first.size() - 8, s2);
    auto linked = read_trace_dat(f.w.b);
    REQUIRE(linked.has_value());
    CHECK(linked->options.time_shift_option.has_value());
    CHECK_FALSE(linked->options.unlinked_time_shift.has_value());
  }
}

TEST_CASE("A compressed or misplaced v7 options section is named") {
  bytes list;
  append_options_end(list, byte_order::little, option_framing::v7, 0);
  v7_file f(byte_order::little);
  f.first_offset(0);
  const std::size_t s = f.section(list, 1);
  f.patch_u64(f.offset_field, s);
  CHECK(is(read_trace_dat(f.w.b).error(), k::compressed_section));
  v7_file g(byte_order::little);
  g.first_offset(0);
  const std::size_t s2 = g.section(list, 0, 16);
  g.patch_u64(g.offset_field, s2);
  CHECK(is(read_trace_dat(g.w.b).error(), k::bad_offset));
}

TEST_CASE("A file that is not a trace.dat of version 6 or 7 is named") {
  CHECK(is(read_trace_dat(bytes(3)).error(), k::truncated));
  writer w;
  w.str("\x17\x08\x44tracinG", false).str("6");
  CHECK(is(read_trace_dat(w.b).error(), k::bad_magic));
  writer v;
  v.raw(from_hex({0x17, 0x08, 0x44})).str("tracing", false).str("5");
  v.b.push_back(std::byte{0});
  CHECK(is(read_trace_dat(v.b).error(), k::unsupported_version));
  writer e;
  e.raw(from_hex({0x17, 0x08, 0x44})).str("tracing", false).str("6");
  e.b.push_back(std::byte{2});
  e.b.push_back(std::byte{8});
  e.u32(4096);
  CHECK(is(read_trace_dat(e.b).error(), k::bad_magic));
}

TEST_CASE("The file reader reads a trace.dat from disk like the one in memory") {
  const auto o = byte_order::little;
  bytes list;
  append_option(list, option_time_shift, *encode_time_shift(sample_option(), o), o);
  append_options_end(list, o, option_framing::v6);
  const auto file = make_v6(o, list);
  const std::string path = std::string(TSYNC_TEST_BINARY_DIR) + "/interop_" + std::to_string(::getpid()) + ".dat";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  }
  auto r = read_trace_dat_file(path);
  std::remove(path.c_str());
  REQUIRE(r.has_value());
  REQUIRE(r->options.time_shift_option.has_value());
  CHECK(*r->options.time_shift_option == sample_option());
  auto missing = read_trace_dat_file(path);
  REQUIRE_FALSE(missing.has_value());
  CHECK(is(missing.error(), k::io_error));
}

TEST_CASE("A broken TIME_SHIFT inside a trace.dat is reported at its file offset") {
  const auto o = byte_order::little;
  bytes list;
  append_option(list, option_time_shift, header(0).b, o);
  append_options_end(list, o, option_framing::v6);
  const auto file = make_v6(o, list);
  auto r = read_trace_dat(file);
  REQUIRE_FALSE(r.has_value());
  CHECK(is(r.error(), k::no_cpus));
  // The options list starts right after "options  \0"; the CPU count is 12 bytes into the payload.
  const std::size_t list_at = file.size() - 10 - 32 - list.size();
  CHECK(r.error().offset == list_at + 6 + 12);
  CHECK(r.error().what().find("at byte " + std::to_string(list_at + 6 + 12)) != std::string::npos);
  // Errors of the conversion carry no offset.
  auto m = to_sync_table(sample_option(), 9);
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().offset == tsync::byte_error::no_offset);
  CHECK(m.error().what().find("at byte") == std::string::npos);
}
