#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "tsync/estimate/model.hpp"
#include "tsync/io/json.hpp"

using tsync::errc;
namespace json = tsync::io::json;

namespace {
std::string object_with_keys(int n) {
  std::string doc = "{";
  for (int i = 0; i < n; ++i) doc += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  return doc + "}";
}
double parse_seconds(const std::string& doc) {
  const auto t0 = std::chrono::steady_clock::now();
  auto v = json::parse(doc);
  REQUIRE(v);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

TEST_CASE("an object with 200k keys parses in linear time") {
  // Regression: the duplicate-key check was quadratic (200k keys: 50 s). Four
  // times the keys must cost about four times the time (quadratic: sixteen);
  // the absolute bound is loose for debug and sanitizer builds.
  const auto small = object_with_keys(50'000);
  const auto big = object_with_keys(200'000);
  const double t_small = parse_seconds(small);
  const double t_big = parse_seconds(big);
  INFO("50k keys: " << t_small << " s, 200k keys: " << t_big << " s");
  CHECK(t_big < 8 * t_small + 0.05);
  CHECK(t_big < 10.0);
  CHECK(json::parse(big)->member_keys.size() == 200'000);
  CHECK_FALSE(tsync::estimate::model::from_json(big));
}

TEST_CASE("duplicate keys are still found and quoted safely") {
  auto v = json::parse("{\"a\":1,\"b\\u0007\":2,\"b\\u0007\":3}");
  REQUIRE_FALSE(v);
  CHECK(v.error().message.find("duplicate key") != std::string::npos);
  CHECK(v.error().message.find('\x07') == std::string::npos);
  CHECK(v.error().message.find("\\x07") != std::string::npos);
}

TEST_CASE("a huge array is refused by the value cap instead of taking hundreds of MB") {
  // Regression: a 9 MB array of small numbers took 494 MB.
  std::string doc = "[";
  for (int i = 0; i < 4'500'000; ++i) doc += i ? ",0" : "0";
  doc += "]";
  auto v = json::parse(doc);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::oversized);
  CHECK(v.error().message.find("max_values") != std::string::npos);
  // The cap is overridable.
  auto small = json::parse("[1,2,3]", {.max_bytes = 100, .max_values = 4});
  CHECK(small);
  CHECK(json::parse("[1,2,3,4]", {.max_bytes = 100, .max_values = 4}).error().code == errc::oversized);
  CHECK(json::parse("[1,2,3,4]", {.max_bytes = 5, .max_values = 100}).error().code == errc::oversized);
}
