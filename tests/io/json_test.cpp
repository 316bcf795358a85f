#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "tsync/estimate/model.hpp"
#include "tsync/io/json.hpp"

using tsync::errc;
namespace json = tsync::io::json;

TEST_CASE("an object with 200k keys parses in linear time") {
  // Regression: the duplicate-key check was quadratic (200k keys: 50 s).
  std::string doc = "{";
  for (int i = 0; i < 200'000; ++i) doc += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  doc += "}";
  const auto t0 = std::chrono::steady_clock::now();
  auto v = json::parse(doc);
  const auto dt = std::chrono::steady_clock::now() - t0;
  REQUIRE(v);
  CHECK(v->member_keys.size() == 200'000);
  CHECK(dt < std::chrono::seconds(1));
  auto m = tsync::estimate::model::from_json(doc);
  CHECK_FALSE(m);
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
