// The mapping between C++ values and PostgreSQL text-format values, done once, through
// traits (as taocpp/taopq does): call sites name types, never encode by hand.
//
//   param_traits<T>::encode(const T&) -> encoded     what a parameter sends (or NULL)
//   result_traits<T>::decode(field)   -> T            what a result column holds
//
// Supported: std::string / std::string_view / const char*, integers, bool, double,
// nlohmann::json (jsonb), timestamps (dataloader::timestamp, sent as RFC 3339),
// std::vector<std::string> (text[]), std::optional<T> (NULL).
// Text must be valid UTF-8 without NUL bytes: anything else is refused before it is sent.
#pragma once

#include "dataloader/error.hpp"
#include "dataloader/text.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dataloader::pg {

// PostgreSQL array literal for a text[] parameter: every element quoted, so that
// quotes, backslashes, commas, braces, spaces, the word NULL and empty strings all
// round-trip exactly.
std::string encode_text_array(const std::vector<std::string>& items);
// Parses a text[] value as PostgreSQL prints it; nullopt on malformed input.
std::optional<std::vector<std::string>> decode_text_array(std::string_view literal);

// One encoded parameter: a value, or SQL NULL; or why it cannot be sent.
struct encoded {
  std::optional<std::string> value;
  std::string problem;  // non-empty: invalid, do not send
};

template <class T>
struct param_traits;

template <>
struct param_traits<std::string_view> {
  static encoded encode(std::string_view s) {
    if (auto p = text_problem(s); !p.empty()) return {std::nullopt, std::move(p)};
    return {std::string(s), {}};
  }
};
template <>
struct param_traits<std::string> {
  static encoded encode(const std::string& s) { return param_traits<std::string_view>::encode(s); }
};
template <>
struct param_traits<const char*> {
  static encoded encode(const char* s) { return param_traits<std::string_view>::encode(s); }
};
template <std::size_t N>
struct param_traits<char[N]> {
  static encoded encode(const char (&s)[N]) { return param_traits<std::string_view>::encode(s); }
};

template <>
struct param_traits<bool> {
  static encoded encode(bool b) { return {std::string(b ? "t" : "f"), {}}; }
};

template <std::integral T>
struct param_traits<T> {
  static encoded encode(T v) { return {std::to_string(v), {}}; }
};

template <>
struct param_traits<double> {
  static encoded encode(double v);
};

template <>
struct param_traits<nlohmann::json> {
  static encoded encode(const nlohmann::json& j);
};

template <>
struct param_traits<timestamp> {
  static encoded encode(timestamp t) { return {format_rfc3339(t), {}}; }
};

template <>
struct param_traits<std::vector<std::string>> {
  static encoded encode(const std::vector<std::string>& items);
};

template <class T>
struct param_traits<std::optional<T>> {
  static encoded encode(const std::optional<T>& v) {
    if (!v) return {std::nullopt, {}};
    return param_traits<T>::encode(*v);
  }
};

// A field of a result row, as text; nullopt for SQL NULL.
using field = std::optional<std::string_view>;

template <class T>
struct result_traits;

template <>
struct result_traits<std::string> {
  static std::optional<std::string> decode(std::string_view s) { return std::string(s); }
};
template <>
struct result_traits<bool> {
  static std::optional<bool> decode(std::string_view s) {
    if (s == "t") return true;
    if (s == "f") return false;
    return std::nullopt;
  }
};
template <std::integral T>
struct result_traits<T> {
  static std::optional<T> decode(std::string_view s) {
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
  }
};
template <>
struct result_traits<double> {
  static std::optional<double> decode(std::string_view s);
};
template <>
struct result_traits<nlohmann::json> {
  static std::optional<nlohmann::json> decode(std::string_view s);
};
template <>
struct result_traits<timestamp> {
  static std::optional<timestamp> decode(std::string_view s) { return parse_timestamp(s); }
};
template <>
struct result_traits<std::vector<std::string>> {
  static std::optional<std::vector<std::string>> decode(std::string_view s) {
    return decode_text_array(s);
  }
};

}  // namespace dataloader::pg
