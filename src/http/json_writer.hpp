// JSON text appended straight to a response body, for the hot responses (prefetch, memory
// lists, search): no intermediate nlohmann::json tree, whose nodes cost an allocation
// each (measured: building and dumping the tree was ~11 % of the server's CPU under
// prefetch load). Output matches nlohmann::json::dump() with error_handler_t::replace
// for valid UTF-8; invalid UTF-8 becomes U+FFFD, so the output is always valid JSON.
//
// The writer places commas itself: call key() then a value inside objects, values only
// inside arrays. Misuse (a value without a key in an object) is a programming error and
// is not diagnosed.
#pragma once

#include "dataloader/text.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dataloader::http::detail {

class json_writer {
 public:
  explicit json_writer(std::string& out) : out_(out) {}

  json_writer& begin_object() { return open('{'); }
  json_writer& end_object() { return close('}'); }
  json_writer& begin_array() { return open('['); }
  json_writer& end_array() { return close(']'); }
  json_writer& key(std::string_view name);

  json_writer& string(std::string_view s);
  json_writer& integer(std::int64_t v);
  json_writer& boolean(bool v);
  json_writer& null();
  json_writer& timestamp(dataloader::timestamp t);  // RFC 3339 string
  json_writer& value(const nlohmann::json& v);
  template <class T>
  json_writer& optional(const std::optional<T>& v) {
    if (!v) return null();
    if constexpr (std::is_same_v<T, nlohmann::json>) return value(*v);
    else return string(*v);
  }

 private:
  void separate();
  json_writer& open(char bracket);
  json_writer& close(char bracket);

  std::string& out_;
  // One entry per open container: whether it already holds an element (a comma is due),
  // and whether the next value follows a key (no comma then).
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

// `s` as a JSON string literal (quotes included), appended to `out`.
void append_json_string(std::string& out, std::string_view s);

}  // namespace dataloader::http::detail
