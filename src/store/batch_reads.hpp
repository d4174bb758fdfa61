// The batch functions behind the store's loaders: one statement for a whole batch of keys.
#pragma once

#include "read_host.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dataloader::store::detail {

asio::awaitable<std::vector<result<std::optional<std::string>>>> read_profiles(read_host& s,
                                                                               std::span<const std::string> ids);
asio::awaitable<std::vector<result<std::optional<nlohmann::json>>>> read_onboarding(read_host& s,
                                                                                    std::span<const std::string> ids);
// Prefetch snapshots (sql::user_snapshots): every user's limit travels with it.
asio::awaitable<std::vector<result<prefetch_result>>> read_snapshots(read_host& s,
                                                                     std::span<const snapshot_key> keys);

// Pages of memory listings (sql::memory_pages): each key's rows, newest first.
asio::awaitable<std::vector<result<std::vector<memory>>>> read_pages(read_host& s, std::span<const page_key> keys);

}  // namespace dataloader::store::detail
