#include <catch2/catch.hpp>

#include "synth.hpp"
#include "tsync/estimate/registry.hpp"

using namespace tsync;
using namespace tsync::estimate;

namespace {
expected<model, errc> always_empty(std::span<const probe_sample>, const fit_options&) {
  return unexpected(errc::empty_input);
}
}  // namespace

TEST_CASE("a fresh registry holds the built-in estimators and no Eigen one") {
  registry r;
  REQUIRE(r.list().size() == 7);
  CHECK(r.list().front().name == "fastest_response");
  CHECK(r.find("kalman") != nullptr);
  CHECK(r.find("regression") == nullptr);
  CHECK(r.fit("regression", {}).error() == errc::not_found);
  CHECK(r.fit("typo", {}).error() == errc::not_found);
}

TEST_CASE("a registry can be extended and refuses duplicate or empty entries") {
  registry r;
  REQUIRE(r.add({"mine", "whole-trace", "test", &always_empty}));
  CHECK(r.list().back().name == "mine");
  CHECK(r.fit("mine", {}).error() == errc::empty_input);
  CHECK(r.add({"mine", "whole-trace", "again", &always_empty}).error() == errc::duplicate_id);
  CHECK(r.add({"", "whole-trace", "no name", &always_empty}).error() == errc::invalid_argument);
  CHECK(r.add({"nofit", "whole-trace", "no function", nullptr}).error() == errc::invalid_argument);
}

TEST_CASE("the free functions use the default registry") {
  const auto n = names();
  REQUIRE(n.size() == estimators().size());
  CHECK(n.size() == default_registry().list().size());
  auto v = synth::make(synth::config{}, 5);
  auto a = fit("median", v);
  auto b = default_registry().fit("median", v);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->segments.size() == b->segments.size());
}

#ifdef TSYNC_TEST_HAS_REGRESSION
TEST_CASE("register_regression adds the Eigen estimator once") {
  registry r;
  REQUIRE(register_regression(r));
  REQUIRE(register_regression(r));
  CHECK(r.list().size() == 8);
  CHECK(r.find("regression") != nullptr);
  auto v = synth::make(synth::config{}, 9);
  CHECK(r.fit("regression", v).has_value());
}
#endif
