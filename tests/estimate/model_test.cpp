#include "synth.hpp"  // first: enables the Eigen estimators when available

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tsync/estimate.hpp"

using namespace tsync;
using namespace tsync::estimate;

namespace {

constexpr tsync::domain_time<tsync::guest> G(std::int64_t v) { return tsync::at_ns<tsync::guest>(v); }
constexpr tsync::domain_time<tsync::host> H(std::int64_t v) { return tsync::at_ns<tsync::host>(v); }
model two_segment_model() {
  model m;
  m.estimator = "hand";
  segment a;
  a.begin = 0;
  a.end = 1000;
  a.ref = 0;
  a.fit = {100, 0};
  a.lo = {{90, 0}};
  a.hi = {{110, 0}};
  a.diag.cause = boundary_cause::start;
  a.diag.stats = {10, 1, 20, 1};
  segment b;
  b.begin = 1000;
  b.end = 3000;
  b.ref = 2000;
  b.fit = {-50, std::int64_t{1} << 47};  // slope 0.5
  b.lo = {{-60, std::int64_t{1} << 47}, {-70, 0}};
  b.hi = {{-40, std::int64_t{1} << 47}};
  b.stat = stat_band{4.0, 0.0, 0.0, 2.0};
  b.diag.cause = boundary_cause::step;
  m.segments = {a, b};
  return m;
}
}  // namespace

TEST_CASE("a model maps guest to host through the segment that holds the time") {
  const auto m = two_segment_model();
  CHECK(m.to_host(G(500)).value() == H(600));
  CHECK(m.to_host(G(-100)).value() == H(0));       // before all: the first segment extends
  CHECK(m.to_host(G(2000)).value() == H(1950));    // at the reference of the second
  CHECK(m.to_host(G(2100)).value() == H(2100));    // 2100 - 50 + 50
  CHECK(m.to_host(G(4000)).value() == H(4950));    // after all: the last segment extends
  auto hb = m.hard_bounds(G(2100));
  REQUIRE(hb);
  CHECK(hb->lo == H(2100 - 70 - 1));  // min of the two lower lines, minus the rounding slack
  CHECK(hb->hi == H(2100 + 10 + 1));
  auto sb = m.stat_bounds(G(2000));
  REQUIRE(sb);
  CHECK(*sb == tsync::time_interval<tsync::host>{H(1950 - 4), H(1950 + 4)});
  CHECK_FALSE(m.stat_bounds(G(500)).has_value());
}

TEST_CASE("a model reports overflow and emptiness instead of wrapping") {
  model empty;
  CHECK(empty.to_host(G(0)).error() == errc::empty_input);
  CHECK(empty.hard_bounds(G(0)).error() == errc::empty_input);
  CHECK_FALSE(empty.stat_bounds(G(0)).has_value());
  auto m = two_segment_model();
  CHECK(m.to_host(G(std::numeric_limits<std::int64_t>::max())).error() == errc::out_of_range);
  CHECK(m.hard_bounds(G(std::numeric_limits<std::int64_t>::min())).error() == errc::out_of_range);
}

TEST_CASE("a model survives a JSON round trip exactly") {
  const auto m = two_segment_model();
  auto back = model::from_json(m.to_json());
  REQUIRE(back);
  CHECK(*back == m);
  CHECK(back->to_json() == m.to_json());
}

TEST_CASE("every estimator's model survives a JSON round trip") {
  synth::config c;
  c.t.rho = 11e-6;
  auto v = synth::make(c, 21);
  for (auto n : names()) {
    INFO(n);
    auto m = fit(n, v);
    REQUIRE(m);
    CHECK(m->estimator == n);
    const auto text = m->to_json();
    auto back = model::from_json(text);
    REQUIRE(back);
    CHECK(*back == *m);
    for (std::size_t i = 0; i < v.size(); i += 101) CHECK(back->to_host(G(v[i].g)).value() == m->to_host(G(v[i].g)).value());
  }
}

TEST_CASE("malformed model JSON gives a clear error and never crashes") {
  const std::string good = two_segment_model().to_json();
  tsync::text_error pe;
  CHECK(model::from_json("", &pe).error() == errc::invalid_argument);
  CHECK(pe.message.find("end of input") != std::string::npos);
  CHECK(model::from_json("{\n  \"a\": 1,\n  \"b\" 2}", &pe).error() == errc::invalid_argument);
  CHECK(pe.code == errc::invalid_argument);
  CHECK(pe.line == 3);
  CHECK(pe.column == 7);
  CHECK(pe.what().rfind("line 3, column 7: ", 0) == 0);
  CHECK(model::from_json("{", &pe).error() == errc::invalid_argument);
  CHECK(model::from_json("[]").error() == errc::invalid_argument);
  CHECK(model::from_json(good + "x", &pe).error() == errc::invalid_argument);
  CHECK(pe.message.find("after the JSON value") != std::string::npos);
  CHECK(model::from_json(std::string(100000, '[')).error() == errc::invalid_argument);  // too deep
  // Wrong format name, version, types.
  auto replace = [&](std::string s, const std::string& from, const std::string& to) {
    auto p = s.find(from);
    REQUIRE(p != std::string::npos);
    s.replace(p, from.size(), to);
    return s;
  };
  CHECK(model::from_json(replace(good, "tsync-model", "other")).error() == errc::invalid_argument);
  CHECK(model::from_json(replace(good, "\"version\": 1", "\"version\": 2")).error() == errc::unsupported_version);
  CHECK(model::from_json(replace(good, "\"offset\": 100", "\"offset\": 1.5"), &pe).error() == errc::malformed_number);
  CHECK(pe.message.find("offset") != std::string::npos);
  CHECK(model::from_json(replace(good, "\"offset\": 100", "\"offset\": 99999999999999999999")).error() ==
        errc::malformed_number);
  CHECK(model::from_json(replace(good, "\"offset\": 100", "\"offset\": \"100\"")).error() == errc::invalid_argument);
  CHECK(model::from_json(replace(good, "\"k\": 2", "\"k\": 1e999")).error() == errc::non_finite);
  CHECK(model::from_json(replace(good, "\"cause\": \"start\"", "\"cause\": \"whim\"")).error() == errc::invalid_argument);
  CHECK(model::from_json(replace(good, "\"begin\": 1000", "\"begin\": 0")).error() == errc::unsorted_input);
  CHECK(model::from_json(replace(good, "\"lo\": [[90,0]]", "\"lo\": []")).error() == errc::invalid_argument);
  CHECK(model::from_json(replace(good, "\"lo\": [[90,0]]", "\"lo\": [[90]]")).error() == errc::invalid_argument);
  CHECK(model::from_json(replace(good, "\"probes_used\": 10", "\"probes_used\": -1")).error() == errc::out_of_range);
  CHECK(model::from_json("{\"format\": \"tsync-model\", \"version\": 1, \"estimator\": \"x\", \"segments\": []}").error() ==
        errc::empty_input);
}

TEST_CASE("the JSON reader follows RFC 8259 strictly") {
  CHECK(io::json::parse("{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\"]}").has_value());
  auto s = io::json::parse("\"tab\\there \\\"q\\\" \\\\ \\/\"");
  REQUIRE(s);
  CHECK(s->text == "tab\there \"q\" \\ /");
  CHECK_FALSE(io::json::parse("[1,]").has_value());
  CHECK_FALSE(io::json::parse("{\"a\":1,}").has_value());
  CHECK_FALSE(io::json::parse("01").has_value());
  CHECK_FALSE(io::json::parse("1.").has_value());
  CHECK_FALSE(io::json::parse("-").has_value());
  CHECK_FALSE(io::json::parse("\"a\nb\"").has_value());
  CHECK_FALSE(io::json::parse("\"\\ud800\"").has_value());
  CHECK_FALSE(io::json::parse("\"\\x\"").has_value());
  CHECK_FALSE(io::json::parse("{\"a\":1,\"a\":2}").has_value());
  CHECK_FALSE(io::json::parse("// c\n1").has_value());
  CHECK_FALSE(io::json::parse("NaN").has_value());
  CHECK_FALSE(io::json::parse("tru").has_value());
  std::string out;
  io::json::write_string(out, "a\"b\\c\n\x01");
  auto back = io::json::parse(out);
  REQUIRE(back);
  CHECK(back->text == "a\"b\\c\n\x01");
}

TEST_CASE("per-burst models hold outside the data with bounds that widen by the drift limit") {
  std::vector<probe_sample> v;
  for (std::uint32_t b = 0; b < 3; ++b)
    for (std::uint64_t i = 0; i < 10; ++i) {
      const std::int64_t t1 = 1'000'000'000 * (b + 1) + 30'000 * static_cast<std::int64_t>(i);
      v.push_back({t1, t1 + 10'000 - 500, t1 + 20'000, i, b, 0});
    }
  fit_options o;
  o.max_drift = 1e-4;
  auto m = fit("split_envelope", v, o);
  REQUIRE(m);
  CHECK(m->segments.front().diag.cause == boundary_cause::hold);
  CHECK(m->segments.back().diag.cause == boundary_cause::hold);
  const std::int64_t before = -1'000'000'000;  // ~2 s before the first probe
  CHECK(m->to_host(G(before)).value() == H(before + 500));
  auto hb = m->hard_bounds(G(before));
  REQUIRE(hb);
  CHECK((hb->hi - hb->lo).count() > 2 * 190'000);  // 1e-4 * ~2e9 ns on each side
  auto in = m->hard_bounds(G(2'000'000'000));
  REQUIRE(in);
  CHECK((in->hi - in->lo).count() < 25'000);
}
