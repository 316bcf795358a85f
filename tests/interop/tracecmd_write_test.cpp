// trace-cmd's arithmetic (io::tracecmd_correct) against an independent 128-bit
// reference and real trace-cmd values; TIME_SHIFT plans trace-cmd cannot get
// wrong; the v7 rewrite.
#include <optional>
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "error_kind.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/io/tracecmd.hpp"
#include "tsync/io/tracecmd_write.hpp"

using namespace tsync::io;
using bytes = std::vector<std::byte>;

namespace {

// The formula of trace-cmd's timestamp_correction_calc with the interpolate
// flag, in 128-bit arithmetic, C truncating division.
tsync::i128 reference(std::uint64_t ts, const time_shift_sample& a, const time_shift_sample& b) {
  const tsync::i128 dt = static_cast<tsync::i128>(static_cast<std::int64_t>(ts)) - static_cast<std::int64_t>(a.time);
  const tsync::i128 delta = static_cast<tsync::i128>(b.time) - static_cast<tsync::i128>(a.time);
  const tsync::i128 num = dt * (static_cast<tsync::i128>(b.offset) - a.offset) + delta / 2;
  return static_cast<tsync::i128>(ts) + a.offset + num / delta;
}

bool fits_i64(tsync::i128 v) { return v >= INT64_MIN && v <= INT64_MAX; }

using tsync_interop_test::is;
using tsync_interop_test::kind;
namespace k {
constexpr kind time_out_of_range{tsync::errc::out_of_range, "sample time above 2^63 - 1"};
constexpr kind scaled_interpolation{tsync::errc::unsupported, "scaled sample with the interpolate flag"};
}  // namespace k

}  // namespace

TEST_CASE("tracecmd_correct reproduces trace-cmd report -t on a real recording") {
  // tests/io/tracecmd/data/guest.dat (trace-cmd 3.1.6), vCPU 0's TIME_SHIFT and
  // the first events of 'trace-cmd report --raw-ts' and '-t'.
  const std::vector<time_shift_sample> cpu0{{607288598293u, -35, 1, 0}, {607606422407u, 175, 1, 0}};
  const std::uint64_t raw[] = {607281672379u, 607281712435u, 607281759625u, 607281824418u};
  const std::uint64_t want[] = {607281672340u, 607281712396u, 607281759586u, 607281824380u};
  for (std::size_t i = 0; i < 4; ++i) {
    const auto v = tracecmd_correct(raw[i], cpu0, true);
    CHECK_FALSE(v.overflow);
    CHECK(v.wrapped == want[i]);
    CHECK(v.exact == want[i]);
  }
}

TEST_CASE("tracecmd_correct equals the 128-bit formula wherever it does not overflow, and flags every overflow") {
  std::mt19937_64 rng(12);
  std::uint64_t overflows = 0, fine = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    const int scale = static_cast<int>(rng() % 60);
    const auto t0 = static_cast<std::uint64_t>(rng() >> 2);
    const auto span = 1 + (rng() >> (scale + 4));
    const std::int64_t o0 = static_cast<std::int64_t>(rng() >> 34) - (1ll << 29);
    const std::int64_t o1 = o0 + static_cast<std::int64_t>(rng() % (1u << (rng() % 32))) - (1ll << 20);
    const std::vector<time_shift_sample> s{{t0, o0, 1, 0}, {t0 + span, o1, 1, 0}};
    // ts from t0 - span to t0 + 2 span; below 0 it wraps on purpose to a time that trace-cmd
    // reads as a negative long long (wrapping_*: the modular step is explicit).
    const std::uint64_t ts = tsync::wrapping_add(tsync::wrapping_sub(t0, span), rng() % (3 * span));
    const auto v = tracecmd_correct(ts, s, true);
    const tsync::i128 dt = static_cast<tsync::i128>(static_cast<std::int64_t>(ts)) - static_cast<std::int64_t>(t0);
    const tsync::i128 prod = dt * (static_cast<tsync::i128>(o1) - o0) + span / 2;
    const tsync::i128 ref = reference(ts, s[0], s[1]);
    if (fits_i64(prod) && ref >= 0 && ref <= static_cast<tsync::i128>(UINT64_MAX)) {
      REQUIRE_FALSE(v.overflow);
      REQUIRE(static_cast<tsync::i128>(v.wrapped) == ref);
      ++fine;
    } else if (!fits_i64(prod)) {
      REQUIRE(v.overflow);
      if (ref >= 0 && ref <= static_cast<tsync::i128>(UINT64_MAX)) REQUIRE(static_cast<tsync::i128>(v.exact) == ref);
      ++overflows;
    }
  }
  CHECK(overflows > 1000);
  CHECK(fine > 1000);
}

TEST_CASE("tracecmd_correct picks trace-cmd's pair: first pair below, last pair above, binary search inside") {
  const std::vector<time_shift_sample> s{{100, 0, 1, 0}, {200, 100, 1, 0}, {300, 100, 1, 0}, {400, 0, 1, 0}};
  CHECK(tracecmd_correct(50, s, true).wrapped == 50 - 49);    // first pair extrapolated: (-5000 + 50) / 100 = -49
  CHECK(tracecmd_correct(150, s, true).wrapped == 150 + 50);
  CHECK(tracecmd_correct(200, s, true).wrapped == 200 + 100);  // exact hit: the pair starting there
  CHECK(tracecmd_correct(250, s, true).wrapped == 250 + 100);
  CHECK(tracecmd_correct(350, s, true).wrapped == 350 + 51);  // falling: (-5000 + 50) / 100 = -49
  CHECK(tracecmd_correct(500, s, true).wrapped == 500 - 99);  // last pair extrapolated: (-20000 + 50) / 100 = -199
  CHECK(tracecmd_correct(250, s, false).wrapped == 250 + 100);  // step: the lower sample's offset
  // round half up on a rising segment, toward zero after the +delta/2 on a falling one
  const std::vector<time_shift_sample> r{{0, 0, 1, 0}, {2, 1, 1, 0}};
  CHECK(tracecmd_correct(1, r, true).wrapped == 2);  // 0.5 -> 1
  const std::vector<time_shift_sample> f{{0, 0, 1, 0}, {2, -3, 1, 0}};
  CHECK(tracecmd_correct(1, f, true).wrapped == 0);  // -1.5: (-3 + 1) / 2 = -1
  const std::vector<time_shift_sample> z{{5, 7, 1, 0}, {5, 9, 1, 0}};
  CHECK(tracecmd_correct(9, z, true).zero_delta);
  CHECK(tracecmd_correct(9, std::vector<time_shift_sample>{{5, -3, 1, 0}}, true).wrapped == 6);
}

TEST_CASE("the overflow table: two samples per CPU break trace-cmd at 10 ppm over an hour, not over a minute") {
  const auto minute = tracecmd_two_sample_error(10'000, 60'000'000'000, 10'001);
  CHECK(minute.overflowed == 0);
  CHECK(minute.max_error <= 2);
  const auto hour = tracecmd_two_sample_error(10'000, 3'600'000'000'000, 10'001);
  CHECK(hour.off > hour.events * 9 / 10);
  CHECK(hour.max_error > 30'000'000);
}

TEST_CASE("plan_time_shift: trace-cmd never overflows and lands within 2 ns of tsync on every guest time") {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 40; ++iter) {
    std::vector<tsync::sync_sample> smp;
    std::int64_t t = 1'000'000'000 + static_cast<std::int64_t>(rng() % 1'000'000'000'000);
    std::int64_t o = static_cast<std::int64_t>(rng() % 2'000'000) - 1'000'000;
    const int n = 2 + static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
      tsync::sync_sample s;
      s.guest_time = tsync::at_ns<tsync::guest>(t);
      s.offset = tsync::guest_to_host(o);
      smp.push_back(s);
      const auto len = 1 + static_cast<std::int64_t>(rng() % 86'400'000'000'000);
      t += len;
      const std::int64_t ppb = static_cast<std::int64_t>(rng() % 1'000'001) - 500'000;  // +-500 ppm
      o += static_cast<std::int64_t>(static_cast<tsync::i128>(len) * ppb / 1'000'000'000);
    }
    tsync::correct::table_options to;
    to.mode = tsync::correct::correction_mode::interpolate;
    auto table = tsync::correct::sync_table::make(smp, to);
    REQUIRE(table);
    auto plan = plan_time_shift(*table);
    REQUIRE(plan);
    const auto until = static_cast<std::int64_t>(plan->back().time);
    for (int k = 0; k < 3000; ++k) {
      const auto g = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(until + 1));
      const auto want_t = table->correct(tsync::at_ns<tsync::guest>(g));
      REQUIRE(want_t);
      const auto want = std::optional<std::int64_t>(tsync::raw_ns(*want_t));
      const auto got = tracecmd_correct(static_cast<std::uint64_t>(g), *plan, true);
      REQUIRE_FALSE(got.overflow);
      const auto diff = static_cast<std::int64_t>(got.wrapped) - *want;
      INFO("guest " << g << " tsync " << *want << " trace-cmd " << got.wrapped);
      REQUIRE(diff >= -2);
      REQUIRE(diff <= 2);
    }
  }
}

TEST_CASE("plan_time_shift refuses step tables and empty ranges") {
  std::vector<tsync::sync_sample> smp(2);
  smp[0].guest_time = tsync::at_ns<tsync::guest>(10);
  smp[1].guest_time = tsync::at_ns<tsync::guest>(20);
  tsync::correct::table_options to;
  to.mode = tsync::correct::correction_mode::step;
  auto step = tsync::correct::sync_table::make(smp, to);
  REQUIRE(step);
  CHECK(is(plan_time_shift(*step).error(), k::scaled_interpolation));
  to.mode = tsync::correct::correction_mode::interpolate;
  auto lin = tsync::correct::sync_table::make(smp, to);
  REQUIRE(lin);
  time_shift_plan_options po;
  po.from = 100;
  po.until = 50;
  CHECK(is(plan_time_shift(*lin, po).error(), k::time_out_of_range));
}

namespace {
void put(bytes& b, std::uint64_t v, std::size_t n) { detail::tc_put(b, v, n, byte_order::little); }

// A minimal v7 file: header, then options sections (each a list of options) chained in order.
bytes v7_file(const std::vector<std::vector<std::pair<std::uint16_t, bytes>>>& sections) {
  bytes f;
  for (int c : {0x17, 0x08, 0x44}) f.push_back(static_cast<std::byte>(c));
  for (char c : std::string("tracing7")) f.push_back(static_cast<std::byte>(c));
  f.push_back(std::byte{0});
  f.push_back(std::byte{0});  // little endian
  f.push_back(std::byte{8});  // long size
  put(f, 4096, 4);
  for (char c : std::string("none")) f.push_back(static_cast<std::byte>(c));
  f.push_back(std::byte{0});
  f.push_back(std::byte{0});  // empty compression version
  const std::size_t first_link = f.size();
  put(f, 0, 8);
  std::size_t link = first_link;
  for (const auto& sec : sections) {
    const auto at = f.size();
    for (std::size_t i = 0; i < 8; ++i) f[link + i] = static_cast<std::byte>((at >> (8 * i)) & 0xFF);
    bytes list;
    for (const auto& [id, payload] : sec) append_option(list, id, payload, byte_order::little);
    append_options_end(list, byte_order::little, option_framing::v7, 0);
    put(f, 0, 2);
    put(f, 0, 2);
    put(f, 0, 4);
    put(f, list.size(), 8);
    f.insert(f.end(), list.begin(), list.end());
    link = f.size() - 8;
  }
  return f;
}
time_shift shift_of(std::int64_t offset) {
  time_shift ts;
  ts.flags = time_shift_flag_interpolate;
  ts.cpus = {{{100, offset, 1, 0}, {200, offset + 1, 1, 0}}};
  return ts;
}
}  // namespace

TEST_CASE("rewrite_time_shift links a new section in place of the old TIME_SHIFT") {
  const auto old_payload = *encode_time_shift(shift_of(5), byte_order::little);
  const bytes version{std::byte{'x'}, std::byte{0}};
  SECTION("an old section holding only TIME_SHIFT is unlinked") {
    const auto f = v7_file({{{9, version}}, {{option_time_shift, old_payload}}, {{9, version}}});
    auto r = rewrite_time_shift(f, shift_of(-42));
    REQUIRE(r);
    CHECK(r->old_section_unlinked);
    auto info = read_trace_dat(r->file);
    REQUIRE(info);
    REQUIRE(info->options.time_shift_option);
    CHECK(info->options.time_shift_option->cpus[0][0].offset == -42);
    CHECK(info->options.option_count == 3);  // version, new TIME_SHIFT, version
  }
  SECTION("an old TIME_SHIFT sharing its section is renamed") {
    const auto f = v7_file({{{9, version}, {option_time_shift, old_payload}}});
    auto r = rewrite_time_shift(f, shift_of(-42));
    REQUIRE(r);
    CHECK(r->old_option_renamed);
    auto info = read_trace_dat(r->file);
    REQUIRE(info);
    CHECK(info->options.time_shift_option->cpus[0][0].offset == -42);
  }
  SECTION("a file without TIME_SHIFT gets one at the end of the chain") {
    const auto f = v7_file({{{9, version}}});
    auto r = rewrite_time_shift(f, shift_of(3));
    REQUIRE(r);
    CHECK_FALSE(r->replaced);
    auto info = read_trace_dat(r->file);
    REQUIRE(info);
    CHECK(info->options.time_shift_option->cpus[0][1].offset == 4);
  }
  SECTION("truncated files are errors, not crashes") {
    const auto f = v7_file({{{9, version}, {option_time_shift, old_payload}}});
    for (std::size_t n = 0; n < f.size(); n += 3) {
      const bytes cut(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK_FALSE(rewrite_time_shift(cut, shift_of(1)));
    }
  }
}

namespace {
// A minimal v6 file: header sections, CPU count, an options list (when `options` is
// set), then flyrecord with each CPU's data on its own page.
bytes v6_file(const std::optional<std::vector<std::pair<std::uint16_t, bytes>>>& options,
              const std::vector<bytes>& cpu_data) {
  bytes f;
  auto str = [&](const std::string& s) {
    for (char c : s) f.push_back(static_cast<std::byte>(c));
    f.push_back(std::byte{0});
  };
  for (int c : {0x17, 0x08, 0x44}) f.push_back(static_cast<std::byte>(c));
  for (char c : std::string("tracing")) f.push_back(static_cast<std::byte>(c));
  str("6");
  f.push_back(std::byte{0});  // little endian
  f.push_back(std::byte{8});  // long size
  put(f, 4096, 4);
  str("header_page");
  put(f, 3, 8);
  str("ab");
  str("header_event");
  put(f, 0, 8);
  put(f, 0, 4);  // ftrace formats
  put(f, 0, 4);  // event systems
  put(f, 0, 4);  // kallsyms
  put(f, 0, 4);  // printk
  put(f, 0, 8);  // cmdlines
  put(f, cpu_data.size(), 4);
  if (options) {
    for (char c : std::string("options  ")) f.push_back(static_cast<std::byte>(c));
    f.push_back(std::byte{0});
    for (const auto& [id, payload] : *options) append_option(f, id, payload, byte_order::little);
    append_options_end(f, byte_order::little, option_framing::v6);
  }
  str("flyrecord");
  const std::size_t table = f.size();
  f.resize(table + 16 * cpu_data.size());
  for (std::size_t c = 0; c < cpu_data.size(); ++c) {
    f.resize((f.size() + 4095) / 4096 * 4096);
    const auto at = f.size();
    bytes entry;
    put(entry, at, 8);
    put(entry, cpu_data[c].size(), 8);
    std::copy(entry.begin(), entry.end(), f.begin() + static_cast<std::ptrdiff_t>(table + 16 * c));
    f.insert(f.end(), cpu_data[c].begin(), cpu_data[c].end());
  }
  return f;
}
std::uint64_t get(const bytes& f, std::size_t at) { return detail::tc_get(f.data() + at, 8, byte_order::little); }
}  // namespace

TEST_CASE("rewrite_time_shift rewrites a format-6 options list and moves the CPU data by whole pages") {
  const auto old_payload = *encode_time_shift(shift_of(5), byte_order::little);
  const bytes version{std::byte{'x'}, std::byte{0}};
  const std::vector<bytes> data{bytes(5000, std::byte{0x11}), bytes(100, std::byte{0x22})};
  for (const bool with_old : {true, false}) {
    std::vector<std::pair<std::uint16_t, bytes>> opts{{9, version}};
    if (with_old) opts.emplace_back(option_time_shift, old_payload);
    for (const bool has_list : {true, false}) {
      if (!has_list && with_old) continue;
      const auto f = v6_file(has_list ? std::optional(opts) : std::nullopt, data);
      REQUIRE(read_trace_dat(f));
      time_shift big = shift_of(-42);
      big.cpus.assign(2, std::vector<time_shift_sample>(300, time_shift_sample{100, -42, 1, 0}));
      for (std::size_t i = 0; i < 300; ++i) big.cpus[1][i].time = 100 + i;
      auto r = rewrite_time_shift(f, big);
      REQUIRE(r);
      CHECK(r->replaced == with_old);
      auto info = read_trace_dat(r->file);
      REQUIRE(info);
      REQUIRE(info->options.time_shift_option);
      CHECK(info->options.time_shift_option->cpus.size() == 2);
      CHECK(info->options.time_shift_option->cpus[1].size() == 300);
      // the version option stays, the old TIME_SHIFT goes, the new one is counted
      CHECK(info->options.option_count == (has_list ? 2U : 1U));
      // the flyrecord table points at the same bytes, page-aligned
      const std::string s(reinterpret_cast<const char*>(r->file.data()), r->file.size());
      const auto table = s.find(std::string("flyrecord\0", 10)) + 10;
      for (std::size_t c = 0; c < 2; ++c) {
        const auto off = get(r->file, table + 16 * c), size = get(r->file, table + 16 * c + 8);
        CHECK(off % 4096 == 0);
        REQUIRE(size == data[c].size());
        REQUIRE(off + size <= r->file.size());
        CHECK(std::equal(data[c].begin(), data[c].end(), r->file.begin() + static_cast<std::ptrdiff_t>(off)));
      }
    }
  }
  SECTION("truncated format-6 files are errors, not crashes") {
    const auto f = v6_file(std::vector<std::pair<std::uint16_t, bytes>>{{option_time_shift, old_payload}}, data);
    for (std::size_t n = 0; n < 4200; n += 7) {
      const bytes cut(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK_FALSE(rewrite_time_shift(cut, shift_of(1)));
    }
  }
}
