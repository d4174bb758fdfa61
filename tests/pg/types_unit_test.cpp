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

TEST_CASE("params record the first invalid parameter by position") {
  params p(std::string("ok"), 5, std::string("bad\xff"));
  CHECK(p.size() == 3);
  CHECK(p.problem() == "parameter $3 is not valid UTF-8 (at byte offset 3)");
  std::vector<std::string> items{"fine", std::string("x\0", 2)};
  params q(items);
  CHECK(q.problem() == "parameter $1 element 1 contains a NUL byte at offset 1");
}
