#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "tsync/sim/generator.hpp"
#include "tsync/io/probes_csv.hpp"

using namespace tsync::sim;
using namespace tsync::io;

TEST_CASE("Probes written as CSV read back identically", "[sim]") {
  auto sc = *preset("heavy_tail");
  sc.duration_ns = 30'000'000'000;
  auto t = simulate(sc, 3);
  REQUIRE(t.has_value());
  std::ostringstream os;
  write_probes_csv(os, t->probes, "simulated\nseed 3");
  const std::string text = os.str();
  CHECK(text.rfind("# simulated\n# seed 3\nt1,g,t2,burst,id,vcpu\n", 0) == 0);
  auto back = read_probes_csv(text);
  REQUIRE(back.has_value());
  CHECK(*back == t->probes);
  std::istringstream is(text);
  auto back2 = read_probes_csv(is);
  REQUIRE(back2.has_value());
  CHECK(*back2 == t->probes);
}

TEST_CASE("Minimal three-column CSV numbers probes in file order", "[sim]") {
  auto r = read_probes_csv("# c\n100,5000,300\n\n 400 , 5300 , 650\r\n");
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 2);
  CHECK((*r)[1].t1 == 400);
  CHECK((*r)[1].g == 5300);
  CHECK((*r)[1].t2 == 650);
  CHECK((*r)[1].id == 1);
  CHECK((*r)[1].burst == 0);
  auto h = read_probes_csv("id,t2,g,t1\n7,30,20,10\n");
  REQUIRE(h.has_value());
  CHECK((*h)[0] == tsync::probe_sample{10, 20, 30, 7, 0, 0});
  auto five = read_probes_csv("1,2,3,4,5\n");
  REQUIRE(five.has_value());
  CHECK((*five)[0].burst == 4);
  CHECK((*five)[0].id == 5);
  auto neg = read_probes_csv("-100,-5,+7\n");
  REQUIRE(neg.has_value());
  CHECK((*neg)[0].t1 == -100);
}

TEST_CASE("Malformed CSV lines are reported with their line number", "[sim]") {
  auto check = [](const char* text, std::size_t line, tsync::errc code, const char* needle) {
    auto r = read_probes_csv(text);
    INFO(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().line == line);
    CHECK(r.error().code == code);
    INFO(r.error().what());
    CHECK(r.error().what().find(needle) != std::string::npos);
  };
  check("1,2,3\n4,5\n", 2, tsync::errc::invalid_argument, "got 2");
  check("# x\n1,2,3\n1,2,x\n", 3, tsync::errc::malformed_number, "field 3 (t2)");
  check("1,2,99999999999999999999\n", 1, tsync::errc::number_out_of_range, "t2");
  check("t1,g,t2,id\n1,2,3,-4\n", 2, tsync::errc::malformed_number, "id");
  check("t1,g,t2\n1,2,3,4\n", 2, tsync::errc::invalid_argument, "expected 3 fields");
  check("t1,g,x\n", 1, tsync::errc::invalid_argument, "unknown column");
  check("t1,g,g\n", 1, tsync::errc::invalid_argument, "twice");
  check("t1,g,id\n", 1, tsync::errc::invalid_argument, "t1, g and t2");
  check("1,2,3\nt1,g,t2\n", 2, tsync::errc::malformed_number, "t1");
  check("1,2,3,4,5,6,7\n", 1, tsync::errc::invalid_argument, "3 to 6");
  check("1,,3\n", 1, tsync::errc::malformed_number, "field 2 (g)");
  check("1,2,3,0,1,4294967296\n", 1, tsync::errc::number_out_of_range, "vcpu");
}

TEST_CASE("An empty CSV gives no probes", "[sim]") {
  auto r = read_probes_csv("");
  REQUIRE(r.has_value());
  CHECK(r->empty());
}
