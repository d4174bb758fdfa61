// The store's machinery: loaders for reads, coalesced writers for writes, counters.
// Everything here runs on the pool's strand.
#pragma once

#include "batch_writes.hpp"
#include "coalesced_writer.hpp"
#include "outcome.hpp"

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/loader/loader.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/store/options.hpp"
#include "dataloader/store/types.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <set>
#include <string>

namespace dataloader::store::detail {

using counter = dataloader::detail::single_writer_counter;

// A user and how many of their newest memories to read.
struct snapshot_key {
  std::string user_id;
  int limit = 0;
  friend bool operator==(const snapshot_key&, const snapshot_key&) = default;
};
struct snapshot_key_hash {
  std::size_t operator()(const snapshot_key& k) const noexcept {
    return std::hash<std::string>{}(k.user_id) * 31 + static_cast<std::size_t>(k.limit);
  }
};

class store_impl {
 public:
  store_impl(pg::connection_pool& pool, store_options options, loader_registry* registry);

  pg::connection_pool& pool;
  store_options options;
  loader_registry* registry;
  counter total_operations, queries, naive_queries, retried_statements;

  loader<std::string, std::optional<std::string>> profiles;
  loader<std::string, std::optional<nlohmann::json>> onboarding;
  // Profile, onboarding state, memory count and newest memories of a user, in one
  // statement per batch: serves prefetch and recent memories alike.
  loader<snapshot_key, prefetch_result, snapshot_key_hash> snapshots;
  std::set<int> limits_seen;  // to clear every (user, limit) key of a written user

  coalesced_writer<save_request, std::int64_t> saves;
  coalesced_writer<put_request, bool> profile_puts;
  coalesced_writer<put_request, bool> onboarding_puts;
  coalesced_writer<delete_request, std::int64_t> deletes;

  // Every statement the store sends goes through these two (and is counted); reads may
  // be resent once on a lost connection, writes never.
  asio::awaitable<query_outcome> query(const pg::statement& st, pg::params args, bool read);
  asio::awaitable<group_outcome> group(std::vector<pg::query> queries, bool read);

  // After a write commits: later reads of these users must not join older batches.
  void forget_user(const std::string& user_id);

 private:
  loader_options loader_opts(const char* name) const;
  template <class Request, class Response>
  coalesced_writer<Request, Response> writer(const char* name,
                                             typename coalesced_writer<Request, Response>::build_fn build,
                                             typename coalesced_writer<Request, Response>::answer_fn answer);
};

}  // namespace dataloader::store::detail
