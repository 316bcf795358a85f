// Monotonicity check of corrected per-CPU streams.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "tsync/correct/monotonic.hpp"

using namespace tsync::correct;

TEST_CASE("A non-decreasing stream has no violations") {
  const std::vector<std::int64_t> v{1, 2, 2, 5, 9};
  const auto r = check_monotonic(v);
  CHECK(r.ok());
  CHECK(r.events == 5);
  CHECK(check_monotonic({}).ok());
}

TEST_CASE("Backward steps are counted with the first index and the sizes") {
  const std::vector<std::int64_t> v{10, 20, 15, 30, 5, 6, 6, 4};
  const auto r = check_monotonic(v);
  CHECK_FALSE(r.ok());
  CHECK(r.violations == 3);
  CHECK(r.first_index == 2);
  CHECK(r.first_size == 5);
  CHECK(r.max_size == 25);
  CHECK(r.max_index == 4);
}

TEST_CASE("A backward step across the whole int64 range is measured without overflow") {
  const std::vector<std::int64_t> v{std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()};
  const auto r = check_monotonic(v);
  CHECK(r.violations == 1);
  CHECK(r.first_size == ~std::uint64_t{0});
}

TEST_CASE("The streaming checker gives the same report as the span check") {
  const std::vector<std::int64_t> v{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
  monotonicity_checker c;
  for (auto x : v) c.push(x);
  CHECK(c.report() == check_monotonic(v));
}
