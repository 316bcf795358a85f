#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <istream>
#include <sstream>
#include <streambuf>
#include <string>

#include "tsync/io/probes_csv.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/io/text.hpp"

using tsync::errc;

namespace {
// An endless stream of one byte, like /dev/zero.
class endless_buf : public std::streambuf {
 public:
  explicit endless_buf(char c) { std::fill(std::begin(buf_), std::end(buf_), c); }
 protected:
  int_type underflow() override {
    setg(buf_, buf_, buf_ + sizeof buf_);
    return traits_type::to_int_type(buf_[0]);
  }
 private:
  char buf_[4096];
};
}  // namespace

TEST_CASE("parse_decimal is the one number parser for integers and doubles") {
  std::int64_t i = 0;
  CHECK(tsync::io::parse_decimal("-42", i) == errc::ok);
  CHECK(i == -42);
  CHECK(tsync::io::parse_decimal("9223372036854775808", i) == errc::number_out_of_range);
  CHECK(tsync::io::parse_decimal("4x", i) == errc::malformed_number);
  CHECK(tsync::io::parse_decimal("", i) == errc::malformed_number);
  CHECK(*tsync::io::parse_decimal<double>("2.5e3") == 2500.0);
  CHECK(tsync::io::parse_decimal<double>("inf").error() == errc::non_finite);
  CHECK(tsync::io::parse_decimal<double>("1e999").error() == errc::number_out_of_range);
  CHECK(tsync::io::parse_decimal<std::uint32_t>("-1").error() == errc::malformed_number);
}

TEST_CASE("a UTF-8 byte-order mark before a CSV header is tolerated") {
  std::istringstream t("\xEF\xBB\xBFtime,offset\n10,5\n");
  auto table = tsync::io::parse_table_csv(t);
  REQUIRE(table);
  CHECK(table->samples.size() == 1);
  std::istringstream p("\xEF\xBB\xBFt1,g,t2\n1,2,3\n");
  auto probes = tsync::io::read_probes_csv(p);
  REQUIRE(probes);
  CHECK(probes->size() == 1);
  auto probes2 = tsync::io::read_probes_csv(std::string_view("\xEF\xBB\xBFt1,g,t2\n1,2,3\n"));
  REQUIRE(probes2);
}

TEST_CASE("an endless input without line breaks fails fast at the line cap") {
  endless_buf zeros('\0');
  std::istream in(&zeros);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = tsync::io::parse_table_csv(in);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::oversized);
  CHECK(r.error().message.find("max_line") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  endless_buf zeros2('\0');
  std::istream in2(&zeros2);
  auto p = tsync::io::read_probes_csv(in2);
  REQUIRE_FALSE(p);
  CHECK(p.error().code == errc::oversized);
}

TEST_CASE("an endless input of short lines fails at the total cap which is overridable") {
  endless_buf nl('\n');
  std::istream in(&nl);
  auto r = tsync::io::parse_table_csv(in, {.max_bytes = 10'000, .max_line = 100});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::oversized);
  CHECK(r.error().message.find("max_bytes") != std::string::npos);
  std::istringstream longline(std::string(200, '1') + "\n");
  CHECK(tsync::io::parse_table_csv(longline, {.max_bytes = 1000, .max_line = 100}).error().code == errc::oversized);
}

TEST_CASE("text_error carries code line field and message and quote_input escapes control bytes") {
  const tsync::text_error e{errc::malformed_number, 3, "offset", "bad"};
  CHECK(e.code == errc::malformed_number);
  CHECK(e.line == 3);
  CHECK(e.field == "offset");
  CHECK(e.what() == "line 3: bad");
  CHECK(tsync::quote_input(std::string_view("a\0b\x1b[", 5)) == "a\\x00b\\x1b[");
  CHECK(tsync::quote_input(std::string(100, 'x'), 4) == "xxxx...");
  const tsync::index_error ie{errc::overflow, 7};
  CHECK(ie == tsync::index_error{errc::overflow, 7});
}

TEST_CASE("the where types put the code first and say where in what") {
  const tsync::text_error c{errc::invalid_argument, 2, 5, "", "expected ':'"};
  CHECK(c.column == 5);
  CHECK(c.what() == "line 2, column 5: expected ':'");
  CHECK(tsync::text_error{errc::not_found, 0, "/x/y", "/x/y: not found"}.what() == "/x/y: not found");
  const tsync::byte_error b{errc::truncated, 12, "truncated: the payload ends"};
  CHECK(b.what() == "at byte 12: truncated: the payload ends");
  CHECK(tsync::byte_error{errc::unsupported, tsync::byte_error::no_offset, "scaled"}.what() == "scaled");
  CHECK(std::string(tsync::to_string(errc::bad_format)) == "input does not follow its format");
  CHECK(tsync::make_error_code(errc::bad_format).message() == "input does not follow its format");
}

TEST_CASE("a CSV error names the line and the column and is a text_error") {
  std::istringstream in("time,offset\n10,5\n20,x\n");
  auto t = tsync::io::load_table_csv(in);
  REQUIRE_FALSE(t.has_value());
  const tsync::text_error& e = t.error();
  CHECK(e.code == errc::malformed_number);
  CHECK(e.line == 3);
  CHECK(e.field == "offset");
  CHECK(e.message == "offset 'x': malformed number");
  CHECK(e.what() == "line 3: offset 'x': malformed number");
}

TEST_CASE("CSV errors escape control bytes of the input they quote") {
  // Regression: error messages echoed raw NUL and escape bytes to the terminal.
  std::istringstream t(std::string("time,offset\n1\x1b[2J,5\n", 20));
  auto r = tsync::io::parse_table_csv(t);
  REQUIRE_FALSE(r);
  CHECK(r.error().line == 2);
  CHECK(r.error().message.find('\x1b') == std::string::npos);
  CHECK(r.error().message.find("\\x1b") != std::string::npos);
  auto p = tsync::io::read_probes_csv(std::string_view("t1,g,t2\n1,2\0,3\n", 15));
  REQUIRE_FALSE(p);
  CHECK(p.error().message.find('\0') == std::string::npos);
}
