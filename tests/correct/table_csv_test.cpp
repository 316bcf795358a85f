// The CSV form of a sync table: parsing and errors that name the line.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "tsync/io/table_csv.hpp"

using tsync::errc;
using namespace tsync::correct;
using namespace tsync::io;

TEST_CASE("A CSV table with comments header blank lines and scaling is parsed") {
  std::istringstream in("# a table\ntime,offset,ratio,frac_bits\n\n100, 1000\n  200,2000,3,1\n# end\n");
  auto t = parse_table_csv(in);
  REQUIRE(t.has_value());
  REQUIRE(t->samples.size() == 2);
  CHECK(tsync::raw_ns(t->samples[0].guest_time) == 100);
  CHECK(t->samples[0].offset.count() == 1000);
  CHECK(t->samples[0].ratio == 1);
  CHECK(t->samples[1].ratio == 3);
  CHECK(t->samples[1].frac_bits == 1);
  CHECK(t->lines == std::vector<std::size_t>{4, 5});
}

TEST_CASE("A malformed CSV line is reported with its line number") {
  std::istringstream in("0,0\n10,abc\n");
  auto t = parse_table_csv(in);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().line == 2);
  CHECK(t.error().code == errc::malformed_number);
  CHECK(t.error().field == "offset");
  CHECK(t.error().what().rfind("line 2: offset 'abc'", 0) == 0);
  std::istringstream three("0,0\n1,2,3\n");
  CHECK(parse_table_csv(three).error().line == 2);
  std::istringstream big("0,99999999999999999999\n");
  CHECK(parse_table_csv(big).error().code == errc::number_out_of_range);
  std::istringstream frac("0,0,1,64\n");
  CHECK(parse_table_csv(frac).error().code == errc::bad_frac_bits);
  std::istringstream zero("0,0,0,48\n");
  CHECK(parse_table_csv(zero).error().code == errc::zero_ratio);
}

TEST_CASE("Loading a CSV table names the line of an unsorted or scaled sample") {
  std::istringstream uns("# x\n10,0\n5,0\n");
  auto t = load_table_csv(uns);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().line == 3);
  CHECK(t.error().code == errc::unsorted_input);
  std::istringstream scaled("0,0\n10,0,3,1\n");
  auto u = load_table_csv(scaled, {correction_mode::interpolate, outside_policy::clamp});
  REQUIRE_FALSE(u.has_value());
  CHECK(u.error().line == 2);
  CHECK(u.error().code == errc::unsupported);
  std::istringstream empty("# nothing\n");
  CHECK(load_table_csv(empty).error().code == errc::empty_input);
  std::istringstream ok("0,10\n100,20\n");
  auto v = load_table_csv(ok);
  REQUIRE(v.has_value());
  CHECK(*v->correct(tsync::at_ns<tsync::guest>(50)) == tsync::at_ns<tsync::host>(65));
}
