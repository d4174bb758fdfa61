// parse_json: iterative, bounded JSON parsing for input from outside the process.
#include "dataloader/json.hpp"

#include <doctest/doctest.h>

#include <string>

using dataloader::json_error;
using dataloader::parse_json;

namespace {

std::string nested_objects(std::size_t depth) {
  std::string s;
  for (std::size_t i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s.append(depth, '}');
  return s;
}

}  // namespace

TEST_CASE("parses documents as nlohmann::json::parse does") {
  const std::string text = R"({"s":"x\u00e9","n":-3,"u":7,"f":1.5,"b":true,"z":null,"a":[1,[2,{}],[]],"o":{"k":"v"}})";
  json_error e;
  auto parsed = parse_json(text, e);
  REQUIRE(parsed);
  CHECK(*parsed == nlohmann::json::parse(text));
  CHECK(e.message.empty());
}

TEST_CASE("a top-level scalar parses") {
  json_error e;
  CHECK(parse_json("\"text\"", e) == nlohmann::json("text"));
  CHECK(parse_json("42", e) == nlohmann::json(42));
}

TEST_CASE("nesting up to the limit is accepted") {
  json_error e;
  auto parsed = parse_json(nested_objects(dataloader::max_json_depth), e);
  REQUIRE(parsed);
  CHECK(dataloader::json_depth_within(*parsed));
  CHECK_FALSE(dataloader::json_depth_within(*parsed, dataloader::max_json_depth - 1));
}

TEST_CASE("nesting past the limit is refused naming the top-level member") {
  json_error e;
  CHECK_FALSE(parse_json("{\"state\":" + nested_objects(dataloader::max_json_depth) + "}", e));
  CHECK(e.field == "state");
  CHECK(e.message == "nested deeper than 128 levels");
}

TEST_CASE("100,000 levels are refused without touching the stack") {
  json_error e;
  CHECK_FALSE(parse_json(std::string(100'000, '['), e));
  CHECK(e.field.empty());
  CHECK(e.message == "nested deeper than 128 levels");
}

TEST_CASE("malformed JSON names the byte where it breaks") {
  json_error e;
  CHECK_FALSE(parse_json("{\"a\": tru}", e));
  CHECK(e.field.empty());
  CHECK(e.message.rfind("malformed JSON at byte ", 0) == 0);
}

TEST_CASE("invalid UTF-8 in a string is malformed JSON") {
  json_error e;
  CHECK_FALSE(parse_json("{\"a\": \"\xff\"}", e));
  CHECK(e.message.rfind("malformed JSON", 0) == 0);
}

TEST_CASE("trailing text after the document is malformed JSON") {
  json_error e;
  CHECK_FALSE(parse_json("{} {}", e));
}

TEST_CASE("json_depth_within walks a 100,000-deep tree built in C++ without recursion") {
  nlohmann::json deep = 1;
  for (int i = 0; i < 100'000; ++i) {
    nlohmann::json wrapper = nlohmann::json::array();
    wrapper.push_back(std::move(deep));
    deep = std::move(wrapper);
  }
  CHECK_FALSE(dataloader::json_depth_within(deep));
  CHECK(dataloader::json_depth_within(deep, 100'000));
}
