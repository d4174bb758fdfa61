// The N+1 baseline (--coalesce off, and the benchmarks' comparison): every lookup, saved
// item, deleted key and searched category is its own statement, with the same results as
// the batched paths. Input is validated by the caller.
#pragma once

#include "read_host.hpp"
#include "store_impl.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

namespace dataloader::store::detail::naive {

// Reads go to the server the caller chose (read_host), writes to the primary.
// Profile, recent memories, memory count and onboarding: four statements, one at a time.
asio::awaitable<result<prefetch_result>> prefetch(read_host& s, std::string user_id, int limit);
asio::awaitable<result<std::vector<std::optional<std::string>>>> profiles(read_host& s, std::vector<std::string> ids);
asio::awaitable<result<std::vector<std::optional<nlohmann::json>>>> onboarding(read_host& s,
                                                                               std::vector<std::string> ids);
asio::awaitable<result<recent_memories>> recent(read_host& s, std::string user_id, int limit);
// One upsert per distinct key (last entry wins), in one transaction.
asio::awaitable<result<std::int64_t>> save(store_impl& s, std::vector<memory_input> items);
asio::awaitable<result<std::int64_t>> remove(store_impl& s, const std::string& user_id,
                                             const std::vector<std::string>& keys, const std::string& category);
asio::awaitable<result<search_results>> search(read_host& s, const std::string& user_id,
                                               const std::vector<std::string>& categories, int limit_per_category);
// One upsert of one user's profile or onboarding state through `upsert`.
asio::awaitable<result<bool>> put(store_impl& s, const pg::statement& upsert, const std::string& user_id,
                                  const std::string& value);

}  // namespace dataloader::store::detail::naive
