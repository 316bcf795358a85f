#include <catch2/catch.hpp>

#include "tsync/io/duration.hpp"

using tsync::errc;
using tsync::io::duration_syntax;
using tsync::io::format_duration;
using tsync::io::parse_duration;

TEST_CASE("durations take every unit and both spellings of minutes") {
  CHECK(*parse_duration("7ns") == 7);
  CHECK(*parse_duration("7us") == 7'000);
  CHECK(*parse_duration("7ms") == 7'000'000);
  CHECK(*parse_duration("7s") == 7'000'000'000);
  CHECK(*parse_duration("2m") == 120'000'000'000);
  CHECK(*parse_duration("2min") == 120'000'000'000);
  CHECK(*parse_duration("1h") == 3'600'000'000'000);
  CHECK(*parse_duration("42") == 42);
  CHECK(*parse_duration("-3ms") == -3'000'000);
  CHECK(*parse_duration("0") == 0);
}

TEST_CASE("duration fractions are exact and round half away from zero") {
  CHECK(*parse_duration("2.5ms") == 2'500'000);
  CHECK(*parse_duration("1.5us") == 1'500);
  CHECK(*parse_duration("0.0000000015s") == 2);
  CHECK(*parse_duration("-0.0000000015s") == -2);
  CHECK(*parse_duration("0.0000000014s") == 1);
  CHECK(*parse_duration(".5s") == 500'000'000);
  CHECK(*parse_duration("0.123456789123456789123456789s") == 123'456'789);
}

TEST_CASE("durations that do not fit int64 nanoseconds are refused not wrapped") {
  CHECK(parse_duration("9999999999s").error() == errc::number_out_of_range);
  CHECK(parse_duration("9223372036854775807").value() == INT64_MAX);
  CHECK(parse_duration("9223372036854775808").error() == errc::number_out_of_range);
  CHECK(parse_duration("-9223372036854775808").value() == INT64_MIN);
  CHECK(parse_duration("9223372036.854775808s").error() == errc::number_out_of_range);
  CHECK(parse_duration("153722867281m").error() == errc::number_out_of_range);
  CHECK(parse_duration("99999999999999999999999999999999999999999h").error() == errc::number_out_of_range);
}

TEST_CASE("malformed durations are refused") {
  for (const char* t : {"", "s", "ms", "-", "1.", "1..2s", "1e3ms", " 1s", "1s ", "+1s", "1 s", "1d", "0x10", "1sec", "--1s", "1.-2s"}) {
    INFO("'" << t << "'");
    CHECK(parse_duration(t).error() == errc::malformed_number);
  }
}

TEST_CASE("the tool's syntax needs a unit and a non-negative value") {
  const duration_syntax tool{.unit_required = true, .allow_negative = false};
  CHECK(parse_duration("10", tool).error() == errc::malformed_number);
  CHECK(*parse_duration("0", tool) == 0);
  CHECK(*parse_duration("10s", tool) == 10'000'000'000);
  CHECK(parse_duration("-1s", tool).error() == errc::out_of_range);
}

TEST_CASE("format_duration round-trips through parse_duration") {
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1500}, std::int64_t{60'000'000'000},
                         std::int64_t{2'000'000}, INT64_MAX, INT64_MIN}) {
    INFO(v);
    CHECK(*parse_duration(format_duration(v)) == v);
  }
}
