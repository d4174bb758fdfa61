#include "invalidation.hpp"

#include <nlohmann/json.hpp>

namespace dataloader::store::detail {

invalidation parse_invalidation(std::string_view payload) {
  invalidation everything{true, {}};
  const auto doc = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return everything;
  const auto users = doc.find("users");
  if (users == doc.end() || !users->is_array() || doc.contains("all")) return everything;
  invalidation out;
  out.users.reserve(users->size());
  for (const auto& u : *users) {
    if (!u.is_string()) return everything;
    out.users.push_back(u.get<std::string>());
  }
  return out;
}

}  // namespace dataloader::store::detail
