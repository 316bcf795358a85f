// The output contract (docs/outputs.md): labelled table CSVs with hard bounds,
// segment and epoch columns (old tables still read), probes CSVs with a
// segment column, and session models (version 1 and 2) with their breaks,
// answered per segment.
#include <catch2/catch.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tsync/io/probes_csv.hpp"
#include "tsync/io/session_model_json.hpp"
#include "tsync/io/table_csv.hpp"

using namespace tsync;

namespace {
estimate::model flat(std::int64_t begin, std::int64_t end, std::int64_t offset, std::int64_t half) {
  estimate::model m;
  m.estimator = "convex_hull";
  estimate::segment s;
  s.begin = begin;
  s.end = end;
  s.ref = begin;
  s.fit = {offset, 0};
  s.lo = {{offset - half, 0}};
  s.hi = {{offset + half, 0}};
  m.segments.push_back(s);
  return m;
}
}  // namespace

TEST_CASE("outputs: a labelled table with bounds, segments and epochs round-trips; old tables still read") {
  std::vector<sync_sample> v(3);
  for (int i = 0; i < 3; ++i) {
    v[static_cast<std::size_t>(i)].guest_time = at_ns<guest>(1000 * (i + 1));
    v[static_cast<std::size_t>(i)].offset = guest_to_host(50 + i);
    v[static_cast<std::size_t>(i)].bounds = offset_interval{-7, 9};
  }
  v[2].bounds.reset();
  const std::vector<std::uint32_t> seg{0, 0, 1}, ep{0, 0, 0};
  std::ostringstream out;
  io::write_output_header(out, "ns", "mono_raw", "mono_raw");
  io::write_segmented_table_csv(out, v, seg, ep, std::vector<std::string>{"segments: 2"});
  const std::string text = out.str();
  CHECK(text.find("# sign: host = guest + offset\n") == 0);
  CHECK(text.find("time,offset,offset_lo,offset_hi,segment,epoch\n1000,50,43,59,0,0\n2000,51,44,60,0,0\n3000,52,,,1,0\n") !=
        std::string::npos);
  std::istringstream in(text);
  auto t = io::parse_table_csv(in);
  REQUIRE(t);
  REQUIRE(t->samples.size() == 3);
  CHECK(t->samples[1].bounds == offset_interval{-7, 9});
  CHECK_FALSE(t->samples[2].bounds.has_value());
  CHECK(t->segments == seg);
  CHECK(t->epochs == ep);
  // Old tables: no header, or the old header.
  for (const char* old : {"1000,5\n2000,6\n", "time,offset\n1000,5\n2000,6\n", "time,offset,ratio,frac_bits\n1000,5,1,0\n"}) {
    std::istringstream o(old);
    auto r = io::load_table_csv(o);
    REQUIRE(r);
    CHECK(r->samples().front().offset.count() == 5);
  }
  // Bad headers and rows are named.
  for (const char* bad : {"time,offset,bogus\n1,2,3\n", "time,offset,offset_lo\n1,2,3\n", "time,offset,offset_lo,offset_hi\n1,5,6,9\n",
                          "time,time,offset\n1,1,2\n"}) {
    std::istringstream b(bad);
    CHECK_FALSE(io::parse_table_csv(b).has_value());
  }
}

TEST_CASE("outputs: the probes CSV of tsync sync (a segment column) reads, segments kept apart") {
  std::istringstream in("# sign: host = guest + offset\nt1,g,t2,burst,id,vcpu,segment\n1,2,3,1,0,0,0\n4,5,6,2,0,0,1\n");
  io::probe_csv_reader r;
  std::string line;
  while (std::getline(in, line)) REQUIRE(r.line(line));
  CHECK(r.segments() == std::vector<std::uint32_t>{0, 1});
  CHECK(std::move(r).finish().size() == 2);
}

TEST_CASE("outputs: session models, version 1 and 2, and answers across a break") {
  estimate::session_model one;
  one.estimator = "convex_hull";
  one.parts.push_back({0, 0, 1000, 2000, flat(1000, 2001, 10, 5)});
  const auto j1 = io::session_model_to_json(one, {"mono_raw", "mono_raw", "ns"}, 0);
  CHECK(j1.find("\"version\": 1") != std::string::npos);
  CHECK(j1.find("\"sign\": \"host = guest + offset\"") != std::string::npos);
  REQUIRE(io::read_model_json(j1));  // any model reader reads a one-segment session model
  auto back1 = io::read_session_model_json(j1);
  REQUIRE(back1);
  CHECK(back1->parts.size() == 1);

  // A pause: segment 1 has an offset 5000 larger; then a reboot: epoch 1 repeats guest times.
  estimate::session_model m;
  m.estimator = "convex_hull";
  m.parts.push_back({0, 0, 1000, 2000, flat(1000, 2001, 10, 5)});
  m.parts.push_back({1, 0, 3000, 4000, flat(3000, 4001, 5010, 5)});
  estimate::clock_break b;
  b.kind = estimate::break_kind::clock_step;
  b.segment = 1;
  b.guest_before = 2000;
  b.guest_after = 3000;
  b.step = 5000;
  m.breaks.push_back(b);
  const auto j2 = io::session_model_to_json(m, {}, 0);
  CHECK(j2.find("\"version\": 2") != std::string::npos);
  CHECK_FALSE(io::read_model_json(j2));  // a version-1 reader refuses it rather than misread it
  auto back = io::read_session_model_json(j2);
  REQUIRE(back);
  REQUIRE(back->parts.size() == 2);
  REQUIRE(back->breaks.size() == 1);
  CHECK(back->breaks[0].kind == estimate::break_kind::clock_step);
  CHECK(back->breaks[0].guest_after == 3000);

  auto in0 = estimate::query(*back, 1500);
  REQUIRE(in0);
  CHECK(in0->known);
  CHECK(in0->host == 1510);
  auto gap = estimate::query(*back, 2500);  // between the segments: either side's offset
  REQUIRE(gap);
  CHECK(gap->known);
  CHECK(gap->host == 2510);  // the earlier segment's point: nothing interpolated
  CHECK(gap->lo <= 2500 + 10);
  CHECK(gap->hi >= 2500 + 5010);
  auto only1 = estimate::query(*back, 2500, 1u);
  REQUIRE(only1);
  CHECK(only1->host == 7510);
  CHECK_FALSE(estimate::query(*back, 2500, 7u));

  back->parts.push_back({2, 1, 1000, 4000, flat(1000, 4001, 90'000, 5)});
  auto amb = estimate::query(*back, 3500);
  REQUIRE(amb);
  CHECK_FALSE(amb->known);  // two epochs hold this guest time
}
