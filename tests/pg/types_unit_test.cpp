// Parameter encoding and result decoding, without a server.
#include "dataloader/pg/statement.hpp"
#include "dataloader/pg/types.hpp"

#include <doctest/doctest.h>

using namespace dataloader::pg;

TEST_CASE("text arrays quote every element") {
  CHECK(encode_text_array(std::vector<std::string>{}) == "{}");
  CHECK(encode_text_array(std::vector<std::string>{"a", ""}) == R"({"a",""})");
  CHECK(encode_text_array(std::vector<std::string>{R"(q"b\s)", "NULL", "a,b", "{x}"}) == R"({"q\"b\\s","NULL","a,b","{x}"})");
}

TEST_CASE("text arrays decode what PostgreSQL prints") {
  auto v = decode_text_array(R"({a,"b c","q\"x","NULL",""})");
  REQUIRE(v);
  CHECK(*v == std::vector<std::string>{"a", "b c", "q\"x", "NULL", ""});
  CHECK(decode_text_array("{}")->empty());
  CHECK(!decode_text_array("{a,NULL}"));
  CHECK(!decode_text_array("not an array"));
}

TEST_CASE("text with a NUL byte or invalid UTF-8 is refused with the reason") {
  CHECK(text_problem("plain") == "");
  CHECK(text_problem("héllo ✓ 𝄞") == "");
  CHECK(text_problem(std::string("a\0b", 3)) == "contains a NUL byte at offset 1");
  CHECK(text_problem("ab\xff") == "is not valid UTF-8 (at byte offset 2)");
  CHECK(text_problem("\xc3") == "is not valid UTF-8 (at byte offset 0)");
  CHECK(text_problem("\xed\xa0\x80") != "");  // a UTF-16 surrogate
  CHECK(text_problem("\xc0\xaf") != "");      // overlong
}

TEST_CASE("params record the first invalid parameter by position") {
  params p(std::string("ok"), 5, std::string("bad\xff"));
  CHECK(p.size() == 3);
  CHECK(p.problem() == "parameter $3 is not valid UTF-8 (at byte offset 3)");
  std::vector<std::string> items{"fine", std::string("x\0", 2)};
  params q(items);
  CHECK(q.problem() == "parameter $1 element 1 contains a NUL byte at offset 1");
}

TEST_CASE("timestamps parse PostgreSQL's ISO output with any offset and print RFC 3339") {
  auto t = parse_timestamp("2026-11-25 12:34:56.123456+00");
  REQUIRE(t);
  CHECK(format_rfc3339(*t) == "2026-11-25T12:34:56.123456Z");
  CHECK(format_rfc3339(*parse_timestamp("2026-11-25 14:34:56+02")) == "2026-11-25T12:34:56.000000Z");
  CHECK(format_rfc3339(*parse_timestamp("2026-11-25 07:04:56.5-05:30")) == "2026-11-25T12:34:56.500000Z");
  CHECK(format_rfc3339(*parse_timestamp("2026-11-25T12:34:56Z")) == "2026-11-25T12:34:56.000000Z");
  CHECK(!parse_timestamp("2026-13-01 00:00:00+00"));
  CHECK(!parse_timestamp("yesterday"));
}
