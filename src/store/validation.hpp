// The store's input limits (SPEC.md), checked before any work. Each check returns why the
// value is refused, naming the field, or an empty string.
#pragma once

#include "dataloader/pg/types.hpp"
#include "dataloader/store/types.hpp"

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace dataloader::store::detail {

// A field is named by a string, or by a function that builds the name: called only when
// the value is refused, so that checking many valid items allocates nothing.
template <class Field>
std::string field_name(const Field& field) {
  if constexpr (std::is_invocable_v<const Field&>) return field();
  else return std::string(field);
}

template <class Field>
std::string check_name(const Field& field, std::string_view v) {
  if (v.empty() || v.size() > max_name_bytes)
    return field_name(field) + ": must be 1 to " + std::to_string(max_name_bytes) +
           " bytes (got " + std::to_string(v.size()) + ")";
  if (auto p = text_problem(v); !p.empty()) return field_name(field) + ": " + p;
  return {};
}

template <class Field>
std::string check_text(const Field& field, std::string_view v) {
  if (v.size() > max_text_bytes)
    return field_name(field) + ": must be at most " + std::to_string(max_text_bytes) +
           " bytes (got " + std::to_string(v.size()) + ")";
  if (auto p = text_problem(v); !p.empty()) return field_name(field) + ": " + p;
  return {};
}

inline std::string check_range(std::string_view field, long long v, long long lo, long long hi) {
  if (v < lo || v > hi)
    return std::string(field) + ": must be between " + std::to_string(lo) + " and " +
           std::to_string(hi) + " (got " + std::to_string(v) + ")";
  return {};
}

// Why a save is refused, naming the first bad field ("memories[3].key: ..."), or empty.
inline std::string check_items(const std::vector<memory_input>& items) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& m = items[i];
    auto field = [i](const char* name) {
      return [i, name] { return "memories[" + std::to_string(i) + "]." + name; };
    };
    for (auto p : {check_name(field("user_id"), m.user_id), check_name(field("category"), m.category),
                   check_name(field("key"), m.key), detail::check_text(field("value"), m.value)})
      if (!p.empty()) return p;
  }
  return {};
}

// Why a list of names is refused ("keys[2]: ..."), or empty.
inline std::string check_names(const char* field, const std::vector<std::string>& names) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (auto p = check_name([&] { return std::string(field) + "[" + std::to_string(i) + "]"; }, names[i]);
        !p.empty())
      return p;
  return {};
}

}  // namespace dataloader::store::detail
