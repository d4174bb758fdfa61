#include "rows.hpp"

#include <nlohmann/json.hpp>

namespace dataloader::store::detail {

std::optional<memory> decode_memory(const pg::result& r, std::size_t row, std::size_t c, std::string user_id) {
  auto category = r.get<std::string>(row, c);
  auto key = r.get<std::string>(row, c + 1);
  auto value = r.get<std::string>(row, c + 2);
  auto created = r.get<timestamp>(row, c + 3);
  auto updated = r.get<timestamp>(row, c + 4);
  if (!category || !key || !value || !created || !updated) return std::nullopt;
  return memory{std::move(user_id), std::move(*category), std::move(*key), std::move(*value), *created, *updated};
}

std::vector<memory> decode_memories(const pg::result& r, std::size_t first_col, const std::string& user_id) {
  std::vector<memory> out;
  out.reserve(r.rows());
  for (std::size_t i = 0; i < r.rows(); ++i)
    if (auto m = decode_memory(r, i, first_col, user_id)) out.push_back(std::move(*m));
  return out;
}

void add_search_rows(search_results& out, const pg::result& r, const std::string& user_id) {
  for (std::size_t i = 0; i < r.rows(); ++i) {
    auto category = r.get<std::string>(i, 0);
    if (auto m = decode_memory(r, i, 0, user_id)) out[*category].push_back(std::move(*m));
  }
}

failure decode_failure() {
  return {errc::protocol_error, "the database returned a row the store cannot decode"};
}

// Column 0 is the key's 1-based position, 1 the user's memory count (only on the last row
// of a full page; otherwise the count is the last rank), 2 the memory's rank (NULL: the
// user has none), 3 and 4 profile and onboarding state (on the user's first row only),
// 5.. the memory. A user's rows arrive in rank order.
std::vector<result<prefetch_result>> decode_snapshots(std::span<const std::string> users, const pg::result& r) {
  std::vector<prefetch_result> found(users.size());
  for (std::size_t i = 0; i < users.size(); ++i) found[i].user_id = users[i];
  for (std::size_t row = 0; row < r.rows(); ++row) {
    const auto ord = r.get<std::int64_t>(row, 0);
    if (!ord || *ord < 1 || static_cast<std::size_t>(*ord) > users.size())
      return fail_all<prefetch_result>(users.size(), decode_failure());
    auto& user = found[static_cast<std::size_t>(*ord - 1)];
    const auto rank = r.get<std::int64_t>(row, 2);
    if (auto counted = r.get<std::int64_t>(row, 1)) user.memory_count = *counted;
    else if (rank) user.memory_count = *rank;
    if (!r.is_null(row, 3)) user.profile = r.get<std::string>(row, 3);
    if (!r.is_null(row, 4)) {
      user.onboarding = r.get<nlohmann::json>(row, 4);
      if (!user.onboarding) return fail_all<prefetch_result>(users.size(), decode_failure());
    }
    if (!rank) continue;
    auto m = decode_memory(r, row, 5, user.user_id);
    if (!m) return fail_all<prefetch_result>(users.size(), decode_failure());
    user.recent_memories.push_back(std::move(*m));
  }
  std::vector<result<prefetch_result>> results;
  results.reserve(found.size());
  for (auto& user : found) results.emplace_back(std::move(user));
  return results;
}

}  // namespace dataloader::store::detail
