#include "dataloader/pg/types.hpp"

#include "dataloader/json.hpp"

#include <cmath>
#include <cstdio>

namespace dataloader::pg {

namespace {
void append_quoted(std::string& out, std::string_view item) {
  out += '"';
  for (char c : item) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}
}  // namespace

std::string encode_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    append_quoted(out, items[i]);
  }
  out += '}';
  return out;
}

std::optional<std::vector<std::string>> decode_text_array(std::string_view s) {
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return std::nullopt;
  std::vector<std::string> out;
  std::size_t i = 1;
  const std::size_t end = s.size() - 1;
  if (i == end) return out;
  while (true) {
    std::string item;
    if (s[i] == '"') {
      ++i;
      while (i < end && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < end) ++i;
        item += s[i++];
      }
      if (i >= end) return std::nullopt;
      ++i;  // closing quote
    } else {
      while (i < end && s[i] != ',') item += s[i++];
      if (item == "NULL") return std::nullopt;  // text[] with NULLs is not a vector<string>
    }
    out.push_back(std::move(item));
    if (i == end) return out;
    if (s[i] != ',') return std::nullopt;
    ++i;
  }
}

encoded param_traits<double>::encode(double v) {
  if (std::isnan(v)) return {std::string("NaN"), {}};
  if (std::isinf(v)) return {std::string(v > 0 ? "Infinity" : "-Infinity"), {}};
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return {std::string(buf, p), {}};
}

encoded param_traits<nlohmann::json>::encode(const nlohmann::json& j) {
  // dump() recurses once per level.
  if (!json_depth_within(j))
    return {std::nullopt, "is nested deeper than " + std::to_string(max_json_depth) + " levels"};
  try {
    std::string text = j.dump();  // strict: throws on invalid UTF-8 in strings
    if (auto p = text_problem(text); !p.empty()) return {std::nullopt, std::move(p)};
    return {std::move(text), {}};
  } catch (const nlohmann::json::exception& e) {
    return {std::nullopt, std::string("is not serializable JSON: ") + e.what()};
  }
}

encoded param_traits<std::vector<std::string>>::encode(const std::vector<std::string>& items) {
  for (std::size_t i = 0; i < items.size(); ++i)
    if (auto p = text_problem(items[i]); !p.empty())
      return {std::nullopt, "element " + std::to_string(i) + " " + p};
  return {encode_text_array(items), {}};
}

std::optional<double> result_traits<double>::decode(std::string_view s) {
  if (s == "NaN") return std::nan("");
  if (s == "Infinity") return HUGE_VAL;
  if (s == "-Infinity") return -HUGE_VAL;
  double v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<nlohmann::json> result_traits<nlohmann::json>::decode(std::string_view s) {
  json_error ignored;
  return parse_json(s, ignored);
}

}  // namespace dataloader::pg
