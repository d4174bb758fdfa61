#include "request_parsing.hpp"

#include "dataloader/json.hpp"

namespace dataloader::http::detail {

using json = nlohmann::json;

std::optional<int> parse_int(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<problem> int_param(const target& t, std::string_view name, int lo, int hi, int& out) {
  auto v = t.first(name);
  if (!v) return std::nullopt;
  auto n = parse_int(*v);
  if (!n || *n < lo || *n > hi)
    return bad(std::string(name) + ": must be a whole number from " + std::to_string(lo) + " to " +
               std::to_string(hi) + " (got '" + *v + "')");
  out = *n;
  return std::nullopt;
}

std::vector<std::string> split_commas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    std::size_t start = 0;
    while (true) {
      const auto comma = v.find(',', start);
      out.push_back(v.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

std::variant<json, problem> json_body(const request& req) {
  json_error e;
  auto body = parse_json(req.body(), e);
  if (!body) return bad((e.field.empty() ? std::string("body") : e.field) + ": " + e.message);
  if (!body->is_object()) return bad("body: must be a JSON object");
  return std::move(*body);
}

std::optional<problem> string_field(const json& obj, const std::string& where, const char* name, std::string& out) {
  auto it = obj.find(name);
  if (it == obj.end()) return bad(where + name + ": missing");
  if (!it->is_string()) return bad(where + name + ": must be a string");
  out = it->get<std::string>();
  return std::nullopt;
}

std::optional<problem> string_array(const json& obj, const char* name, std::size_t max, std::vector<std::string>& out,
                                    bool required) {
  auto it = obj.find(name);
  if (it == obj.end()) return required ? std::optional<problem>(bad(std::string(name) + ": missing")) : std::nullopt;
  if (!it->is_array()) return bad(std::string(name) + ": must be an array of strings");
  if (it->size() > max) return bad(std::string(name) + ": at most " + std::to_string(max) + " entries (got " + std::to_string(it->size()) + ")");
  for (std::size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) return bad(std::string(name) + "[" + std::to_string(i) + "]: must be a string");
    out.push_back((*it)[i].get<std::string>());
  }
  return std::nullopt;
}

std::optional<problem> memories_field(const json& obj, std::size_t max, std::vector<store::memory_input>& out) {
  auto list = obj.find("memories");
  if (list == obj.end()) return bad("memories: missing");
  if (!list->is_array()) return bad("memories: must be an array");
  if (list->size() > max)
    return bad("memories: at most " + std::to_string(max) + " entries (got " + std::to_string(list->size()) + ")");
  out.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto& m = (*list)[i];
    const std::string where = "memories[" + std::to_string(i) + "].";
    if (!m.is_object()) return bad("memories[" + std::to_string(i) + "]: must be an object");
    store::memory_input in;
    for (auto [name, field] : {std::pair{"user_id", &in.user_id}, {"category", &in.category}, {"key", &in.key}, {"value", &in.value}})
      if (auto p = string_field(m, where, name, *field)) return p;
    out.push_back(std::move(in));
  }
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Runs over the longer input whatever the contents, so the time says nothing of them.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace dataloader::http::detail
