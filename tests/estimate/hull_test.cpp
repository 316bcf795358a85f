// The convex hull fit's block hulls: after any sequence of drops they equal
// the hulls rebuilt from scratch over the kept probes (what the soft rejection
// used to do on every pair of drops), including equal x and collinear points.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "tsync/estimate/hull.hpp"

using namespace tsync;
using namespace tsync::estimate;

namespace {

bool same_points(const std::vector<estimate::detail::hpt>& a, const std::vector<estimate::detail::hpt>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].x != b[i].x || a[i].y != b[i].y) return false;
  return true;
}

}  // namespace

TEST_CASE("block hulls equal the hulls rebuilt from scratch after every drop") {
  std::mt19937_64 rng(20261206);
  for (int round = 0; round < 12; ++round) {
    const std::size_t n = 50 + rng() % 9000;
    std::vector<estimate::detail::hull_probe> pts(n);
    for (std::size_t i = 0; i < n; ++i) {
      // Few distinct x (many equal x) in some rounds, collinear runs in others.
      const std::int64_t x = round % 3 == 0 ? static_cast<std::int64_t>(rng() % 64) : static_cast<std::int64_t>(rng() % 1'000'000);
      const std::int64_t a = round % 3 == 1 ? 3 * x : static_cast<std::int64_t>(rng() % 5000);
      pts[i] = {x, a, a + static_cast<std::int64_t>(rng() % 5000), i};
    }
    estimate::detail::hull_blocks blocks(pts);
    std::vector<char> alive(n, 1);
    std::vector<estimate::detail::hpt> ua, lb;
    for (int step = 0; step < 60; ++step) {
      blocks.hulls(ua, lb);
      std::vector<estimate::detail::hpt> qa, qb;
      for (std::size_t i = 0; i < n; ++i)
        if (alive[i]) {
          qa.push_back({pts[i].x, pts[i].a, i});
          qb.push_back({pts[i].x, pts[i].b, i});
        }
      INFO("round " << round << " step " << step);
      REQUIRE(same_points(ua, estimate::detail::half_hull(qa, true)));
      REQUIRE(same_points(lb, estimate::detail::half_hull(qb, false)));
      if (ua.empty()) break;
      // Drop a hull vertex (what the soft rejection drops) or any probe.
      const std::size_t pos = step % 2 == 0 ? ua[rng() % ua.size()].idx : rng() % n;
      alive[blocks.at(pos).idx] = 0;
      blocks.drop(pos);
    }
  }
}
