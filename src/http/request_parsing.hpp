// Reading a request at the edge: query parameters, JSON bodies and their fields, the
// bearer token. Each check returns the problem to answer with, naming the field, or
// nothing.
#pragma once

#include "dataloader/http/service.hpp"
#include "dataloader/http/url.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace dataloader::http::detail {

// A request-scoped failure on its way to an error response.
struct problem {
  unsigned status;
  std::string code;
  std::string message;
};

inline problem bad(std::string message) { return {400, "invalid_argument", std::move(message)}; }

std::optional<int> parse_int(const std::string& s);
// `name` as a whole number in [lo, hi] into `out` (left alone when absent).
std::optional<problem> int_param(const target& t, std::string_view name, int lo, int hi, int& out);
// "a,b" and "c" -> {"a", "b", "c"}.
std::vector<std::string> split_commas(const std::vector<std::string>& values);
// The body as a JSON object (parsed with the nesting limit), or why not.
std::variant<nlohmann::json, problem> json_body(const request& req);
std::optional<problem> string_field(const nlohmann::json& obj, const std::string& where, const char* name,
                                    std::string& out);
std::optional<problem> string_array(const nlohmann::json& obj, const char* name, std::size_t max,
                                    std::vector<std::string>& out, bool required = true);
// The "memories" array of a save body as store input: shapes and types only (the store
// checks lengths and text: store/validation.hpp).
std::optional<problem> memories_field(const nlohmann::json& obj, std::size_t max, std::vector<store::memory_input>& out);
// Whether `a` equals `b`, in time that depends on their lengths only.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace dataloader::http::detail
