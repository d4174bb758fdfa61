// Rows of the store's statements decoded into its types (sql.hpp says what each returns).
#pragma once

#include "outcome.hpp"

#include "dataloader/pg/result.hpp"
#include "dataloader/store/types.hpp"

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace dataloader::store::detail {

// The memory in columns first_col.. (category, key, value, created_at, updated_at).
std::optional<memory> decode_memory(const pg::result& r, std::size_t row, std::size_t first_col,
                                    std::string user_id);

// Every memory of `r` from column first_col on, for one user.
std::vector<memory> decode_memories(const pg::result& r, std::size_t first_col, const std::string& user_id);

// Rows of sql::user_snapshots: one prefetch_result per user of the batch, in order.
std::vector<result<prefetch_result>> decode_snapshots(std::span<const std::string> users, const pg::result& r);

// Rows of a search statement (column 0 the category, 0.. the memory) added to `out`.
void add_search_rows(search_results& out, const pg::result& r, const std::string& user_id);

failure decode_failure();

// One result per id, in the ids' order, from the rows found by id (a missing id: nullopt).
template <class V>
std::vector<result<std::optional<V>>> in_key_order(std::span<const std::string> ids,
                                                   const std::unordered_map<std::string, V>& found) {
  std::vector<result<std::optional<V>>> results;
  results.reserve(ids.size());
  for (const auto& id : ids) {
    auto it = found.find(id);
    results.emplace_back(it == found.end() ? std::optional<V>{} : std::optional<V>(it->second));
  }
  return results;
}

}  // namespace dataloader::store::detail
