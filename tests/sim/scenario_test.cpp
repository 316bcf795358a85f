#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>

#include "tsync/sim/scenario.hpp"

using namespace tsync::sim;

// The code of a validation: errc::ok when valid.
static tsync::errc code_of(const tsync::expected<void, tsync::errc>& v) { return v ? tsync::errc::ok : v.error(); }

TEST_CASE("Every preset is valid and prints and parses back to itself", "[sim]") {
  REQUIRE(preset_names().size() >= 9);
  for (const auto& n : preset_names()) {
    INFO(n);
    auto sc = preset(n);
    REQUIRE(sc.has_value());
    CHECK(sc->name == n);
    CHECK(code_of(validate(*sc)) == tsync::errc::ok);
    CHECK_FALSE(sc->description.empty());
    const auto text = to_text(*sc);
    auto back = parse_scenario(text);
    INFO(text);
    REQUIRE(back.has_value());
    CHECK(*back == *sc);
  }
  CHECK(preset("nope").error() == tsync::errc::not_found);
}

TEST_CASE("The presets carry the parameters of the benchmark table", "[sim]") {
  CHECK(preset("quiet")->probes_per_burst == 339);
  CHECK(preset("drift_wander")->probes_per_burst == 32);
  CHECK(preset("constant_asymmetry")->floor_at(preset("constant_asymmetry")->start_ns) == 5'000);
  CHECK(preset("quiet")->floor_at(0) == 0);
  auto a = *preset("asymmetry_step");
  CHECK(a.floor_at(a.start_ns) == 0);
  CHECK(a.floor_at(a.start_ns + 400'000'000'000) == 5'000);
  CHECK(preset("clock_step")->clock.offset_steps.size() == 1);
  CHECK(preset("frequency_step")->clock.frequency_steps.size() == 1);
  CHECK(preset("stamp_noise")->clock.glitch_ns == -20'000);
  CHECK(preset("heavy_tail")->link.fwd.queue.kind == dist_kind::pareto);
}

TEST_CASE("A scenario file can start from a preset and override keys with units", "[sim]") {
  auto sc = parse_scenario(
      "# my run\n"
      "preset=quiet\n"
      "\n"
      "  duration = 2.5min \n"
      "burst_interval=1s\r\n"
      "clock.offset=-3ms\n"
      "clock.drift_ppm=-12.5\n"
      "clock.offset_step=30s,100us\n"
      "clock.offset_step=60s,-50us\n"
      "link.fwd.queue=lognormal:2000,0.5\n"
      "link.asym_step=10s,back,7us\n");
  REQUIRE(sc.has_value());
  CHECK(sc->name == "quiet");
  CHECK(sc->duration_ns == 150'000'000'000);
  CHECK(sc->burst_interval_ns == 1'000'000'000);
  CHECK(sc->clock.offset_ns == -3'000'000);
  CHECK(sc->clock.drift_ppm == -12.5);
  REQUIRE(sc->clock.offset_steps.size() == 2);
  CHECK(sc->clock.offset_steps[1].delta_ns == -50'000);
  CHECK(sc->link.fwd.queue == lognormal(2000, 0.5));
  REQUIRE(sc->link.asymmetry_steps.size() == 1);
  CHECK(sc->link.asymmetry_steps[0].dir == direction::backward);
  auto back = parse_scenario(to_text(*sc));
  REQUIRE(back.has_value());
  CHECK(*back == *sc);
}

TEST_CASE("Malformed scenario text is rejected with the line number and key", "[sim]") {
  auto check = [](const std::string& text, std::size_t line, tsync::errc code, const std::string& needle) {
    auto r = parse_scenario(text);
    INFO(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().line == line);
    CHECK(r.error().code == code);
    INFO(r.error().what());
    CHECK(r.error().what().find(needle) != std::string::npos);
  };
  check("name=x\nduration 5s\n", 2, tsync::errc::invalid_argument, "key=value");
  check("name=x\nbogus=1\n", 2, tsync::errc::not_found, "bogus");
  check("duration=5parsecs\n", 1, tsync::errc::malformed_number, "duration");
  check("duration=99999999999min\n", 1, tsync::errc::number_out_of_range, "duration");
  check("probes_per_burst=-3\n", 1, tsync::errc::malformed_number, "probes_per_burst");
  check("\n\nlink.fwd.queue=exp:x\n", 3, tsync::errc::malformed_number, "link.fwd.queue");
  check("link.asym_step=10s,sideways,5us\n", 1, tsync::errc::invalid_argument, "fwd or back");
  check("clock.offset_step=10s\n", 1, tsync::errc::invalid_argument, "AT,DELTA");
  check("name=a\npreset=quiet\n", 2, tsync::errc::invalid_argument, "preset");
  check("preset=nothing\n", 1, tsync::errc::not_found, "preset");
  check("link.loss=1.5\n", 1, tsync::errc::invalid_argument, "link.loss: must be in [0, 1]");
  check("probes_per_burst=0\n", 1, tsync::errc::invalid_argument, "probes_per_burst: must be positive");
  check("clock.drift_ppm=inf\n", 1, tsync::errc::non_finite, "clock.drift_ppm");
}

TEST_CASE("An empty scenario text gives the defaults", "[sim]") {
  auto sc = parse_scenario("");
  REQUIRE(sc.has_value());
  CHECK(*sc == scenario{});
  auto sc2 = parse_scenario("# only a comment");
  REQUIRE(sc2.has_value());
}

TEST_CASE("A knot spacing that would need unbounded memory is refused by validation", "[sim]") {
  // Regression: clock.knot=1ns passed validation, then allocated without bound.
  auto r = parse_scenario("clock.knot=1ns\n");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == tsync::errc::oversized);
  scenario sc;
  sc.clock.knot_ns = 1;
  CHECK(code_of(validate(sc)) == tsync::errc::oversized);
  CHECK(tsync::sim::truth_map::make(sc.clock, 0, sc.duration_ns, 1).error() == tsync::errc::oversized);
  CHECK(parse_scenario("clock.knot=10ms\n").has_value());
}

TEST_CASE("Offset steps whose sum would wrap int64 are refused", "[sim]") {
  // Regression: two large offset steps wrapped int64 silently (UBSan).
  auto r = parse_scenario("clock.offset_step=1s,4611686018427387904ns\nclock.offset_step=2s,4611686018427387904ns\n");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == tsync::errc::out_of_range);
  CHECK(parse_scenario("clock.offset_step=1s,-5ms\nclock.offset_step=2s,5ms\n").has_value());
}

TEST_CASE("Scenario durations use the one grammar with m and min for minutes", "[sim]") {
  auto a = parse_scenario("duration=2m\n");
  auto b = parse_scenario("duration=2min\n");
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->duration_ns == 120'000'000'000);
  CHECK(a->duration_ns == b->duration_ns);
}

TEST_CASE("Scenario validation errors name the key and the line that set it", "[sim]") {
  // Regression: validation said "invalid scenario: ..." on line 0, with no key.
  auto check = [](const std::string& text, std::size_t line, const std::string& key, tsync::errc code) {
    auto r = parse_scenario(text);
    INFO(text);
    REQUIRE_FALSE(r.has_value());
    INFO(r.error().what());
    CHECK(r.error().line == line);
    CHECK(r.error().field == key);
    CHECK(r.error().code == code);
    CHECK(r.error().message.rfind(key + ": ", 0) == 0);  // the message starts with the key
  };
  check("name=x\n\nclock.knot=1ns\n", 3, "clock.knot", tsync::errc::oversized);
  check("clock.knot=1ms\nduration=100000s\n", 2, "duration", tsync::errc::oversized);  // the key set last
  check("duration=10s\nprobes_per_burst=1000000\nburst_interval=1s\n", 3, "burst_interval", tsync::errc::oversized);
  check("burst_interval=1s\nprobes_per_burst=1000000\n# a comment\n", 2, "probes_per_burst", tsync::errc::oversized);
  check("vcpus=0\n", 1, "vcpus", tsync::errc::invalid_argument);
  check("name=a\nprobe_gap=-1us\n", 2, "probe_gap", tsync::errc::invalid_argument);
  check("start=-1s\n", 1, "start", tsync::errc::out_of_range);
  check("preset=quiet\nclock.glitch_prob=2\n", 2, "clock.glitch_prob", tsync::errc::invalid_argument);
  check("clock.host_quantum=0\n", 1, "clock.host_quantum", tsync::errc::invalid_argument);
  check("clock.drift_ppm=60000\nclock.wander_ppm=50000\n", 2, "clock.wander_ppm", tsync::errc::invalid_argument);
  check("clock.offset_step=1s,4611686018427387904ns\nclock.offset_step=2s,4611686018427387904ns\n", 2,
        "clock.offset_step", tsync::errc::out_of_range);
  check("clock.freq_step=-1s,5\n", 1, "clock.freq_step", tsync::errc::invalid_argument);
  check("link.fwd.min=10us\nlink.asym_step=1s,fwd,5us\nlink.asym_step=2s,fwd,-20us\n", 3, "link.asym_step",
        tsync::errc::invalid_argument);
  check("link.back.min=-1ns\n", 1, "link.back.min", tsync::errc::invalid_argument);
  check("link.spike_delay=normal:10,5\n", 1, "link.spike_delay", tsync::errc::invalid_argument);
  check("link.dup=0.5\nlink.reorder=-0.5\n", 2, "link.reorder", tsync::errc::invalid_argument);
}

TEST_CASE("Asymmetry steps that raise a minimum delay beyond int64 are refused without overflow", "[sim]") {
  // Regression: validation added the steps in int64 (signed overflow, caught only by luck).
  auto r = parse_scenario("link.asym_step=1s,fwd,9223372036854775807ns\n");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == tsync::errc::out_of_range);
  CHECK(r.error().line == 1);
  CHECK(r.error().field == "link.asym_step");
  scenario sc;
  sc.link.asymmetry_steps.push_back({0, direction::backward, std::numeric_limits<std::int64_t>::max()});
  const auto v = tsync::sim::validate(sc.link);
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error() == tsync::errc::out_of_range);
  sc.link.asymmetry_steps[0].delta_ns = std::numeric_limits<std::int64_t>::max() - sc.link.back.min_ns;
  CHECK(tsync::sim::validate(sc.link).has_value());  // exactly int64's largest value still fits
}
