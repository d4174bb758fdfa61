// The store's machinery: loaders for reads, coalescing writers with bisection, counters.
// Everything here runs on the pool's strand.
#pragma once

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/loader/loader.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/store/options.hpp"
#include "dataloader/store/types.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

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

struct query_outcome {
  error_code ec;
  pg::result result;
  diagnostics diag;
};
struct group_outcome {
  error_code ec;
  std::vector<pg::result> results;
  diagnostics diag;
};

std::optional<memory> decode_memory(const pg::result& r, std::size_t row, std::size_t first_col,
                                    std::string user_id);
failure failure_of(const error_code& ec, const diagnostics& d);

class store_impl;

// Writes from many callers in one tick become one statement group (one transaction).
// When it fails on the server, the callers are split in halves and each half is retried,
// down to the single caller whose data fails (the seed's OPTIMISTIC strategy).
template <class Request, class Response>
class coalesced_writer {
 public:
  // Statements for a set of callers; answers for them from the group's results.
  using build_fn = std::function<std::vector<pg::query>(std::span<const Request* const>)>;
  using answer_fn = std::function<std::vector<Response>(std::span<const Request* const>, const std::vector<pg::result>&)>;

  coalesced_writer(store_impl& store, std::string name, build_fn build, answer_fn answer);

  asio::awaitable<result<Response>> submit(Request request);

 private:
  asio::awaitable<std::vector<result<Response>>> run(std::vector<const Request*> requests);

  store_impl& store_;
  build_fn build_;
  answer_fn answer_;
  std::unordered_map<std::uint64_t, Request> pending_;
  std::uint64_t next_id_ = 1;
  loader<std::uint64_t, Response> loader_;
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

  struct save_request {
    std::vector<memory_input> items;
  };
  struct put_request {
    std::string user_id;
    std::string value;
  };
  struct delete_request {
    std::string user_id;
    std::vector<std::string> keys;
    std::string category;  // empty: any
  };
  coalesced_writer<save_request, std::int64_t> saves;
  coalesced_writer<put_request, bool> profile_puts;
  coalesced_writer<put_request, bool> onboarding_puts;
  coalesced_writer<delete_request, std::int64_t> deletes;

  asio::awaitable<query_outcome> query(const pg::statement& st, pg::params args, bool read);
  asio::awaitable<group_outcome> group(std::vector<pg::query> queries, bool read);

  // After a write commits: later reads of these users must not join older batches.
  void forget_user(const std::string& user_id);
  loader_options loader_opts(const char* name) const;
};

template <class Request, class Response>
coalesced_writer<Request, Response>::coalesced_writer(store_impl& store, std::string name,
                                                      build_fn build, answer_fn answer)
    : store_(store),
      build_(std::move(build)),
      answer_(std::move(answer)),
      loader_(store.pool.get_executor(),
              [this](std::span<const std::uint64_t> ids) -> asio::awaitable<std::vector<result<Response>>> {
                std::vector<const Request*> requests;
                for (auto id : ids) requests.push_back(&pending_.at(id));
                auto out = co_await run(std::move(requests));
                for (auto id : ids) pending_.erase(id);
                co_return out;
              },
              store.loader_opts(name.c_str())) {}

template <class Request, class Response>
asio::awaitable<result<Response>> coalesced_writer<Request, Response>::submit(Request request) {
  const auto id = next_id_++;
  pending_.emplace(id, std::move(request));
  diagnostics diag;
  auto [ec, value] = co_await loader_.async_load(id, diag, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return failure{ec, diag.message()};
  co_return value;
}

}  // namespace dataloader::store::detail
