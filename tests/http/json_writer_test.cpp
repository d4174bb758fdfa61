// The hand-written JSON writer against nlohmann::json, the reference it must agree with.
#include "http/json_writer.hpp"

#include <doctest/doctest.h>

#include <random>

using dataloader::http::detail::append_json_string;
using dataloader::http::detail::json_writer;
using json = nlohmann::json;

namespace {

std::string dumped(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string written(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace

TEST_CASE("strings are escaped exactly as nlohmann::json dumps them") {
  std::vector<std::string> cases{"", "plain", "quote \" backslash \\ slash /", "tab\tnewline\nreturn\rbell\a",
                                 std::string("nul\0byte", 8), "\x01\x1f\x7f", "héllo ✓ 𝄞 日本語",
                                 "\b\f", "{\"looks\": [\"like json\"]}"};
  // Random strings of valid UTF-8: ASCII of every kind, and 2-, 3- and 4-byte sequences.
  std::mt19937 rng(11);
  const std::vector<std::string> pieces{"a", "\"", "\\", "\n", "\x02", "\x1f", " ", "é", "€", "𝄞", "\x7f", "\xef\xbf\xbf"};
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    for (int k = static_cast<int>(rng() % 20); k > 0; --k) s += pieces[rng() % pieces.size()];
    cases.push_back(s);
  }
  for (const auto& s : cases) {
    CAPTURE(s);
    CHECK(written(s) == dumped(json(s)));
  }
}

TEST_CASE("invalid UTF-8 becomes U+FFFD and the output stays valid JSON") {
  for (std::string s : {std::string("ab\xff" "cd"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                        std::string("\xc0\xaf" "x"), std::string("ok \xf4\x90\x80\x80 end"), std::string("é\x80")}) {
    CAPTURE(s);
    const auto out = written(s);
    const auto parsed = json::parse(out, nullptr, false);
    REQUIRE(!parsed.is_discarded());
    const auto text = parsed.get<std::string>();
    CHECK(text.find("\xef\xbf\xbd") != std::string::npos);
    CHECK(dataloader::text_problem(text).empty());
  }
  CHECK(written("ab\xff" "cd") == "\"ab\xef\xbf\xbd" "cd\"");
}

TEST_CASE("objects and arrays get their commas, and the document equals nlohmann's") {
  std::string out;
  json_writer w(out);
  const std::optional<std::string> none, some("p");
  const std::optional<json> state = json::parse(R"({"step": 2, "done": [true, null]})");
  w.begin_object();
  w.key("count").integer(-42);
  w.key("empty").begin_array().end_array();
  w.key("list").begin_array().integer(1).string("two").null().boolean(false).begin_object().end_object().end_array();
  w.key("none").optional(none);
  w.key("some").optional(some);
  w.key("state").optional(state);
  w.key("when").timestamp(dataloader::timestamp(std::chrono::microseconds(1'764'073'496'123'456)));
  w.end_object();
  const json expected = {{"count", -42},
                         {"empty", json::array()},
                         {"list", {1, "two", nullptr, false, json::object()}},
                         {"none", nullptr},
                         {"some", "p"},
                         {"state", *state},
                         {"when", "2025-11-25T12:24:56.123456Z"}};
  CHECK(out == dumped(expected));
}
