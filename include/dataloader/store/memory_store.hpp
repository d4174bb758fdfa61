// The memory store: profiles, memories and onboarding state of users, read and written in
// batches. Lookups from many callers in one tick become one statement per kind of data
// (through loaders), and those statements leave together in one pipeline flush. A
// prefetch needs all three kinds: the prefetches (and recent-memory reads) of one tick
// are one statement, read from one snapshot. Writes from many callers in one tick are
// coalesced into one upsert; when a coalesced write fails, the callers are split in
// halves and retried (bisection) so that only the caller whose data fails gets the error.
//
// Read-your-writes: a write is acknowledged after it commits and after it has cleared
// the loaders' entries for its keys, so a read that starts after the acknowledgement
// never joins a batch sent before the commit.
//
// Every operation validates its input first (SPEC.md limits) and refuses bad input with
// errc::invalid_argument naming the field; a request with one invalid item writes nothing.
//
// Every operation completes with void(error_code, T), takes any completion token, and has
// an overload taking diagnostics& that receives the error's readable text, and one taking
// consistency& as well: positions in the write-ahead log for read-your-writes across
// processes (consistency.hpp). Errors:
// errc::invalid_argument (bad input), the pool's (errc::pool_timeout, connection_lost,
// timeout, pool_closed), a server error's SQLSTATE (pg/sqlstate.hpp).
//   - Thread safety: may be called from any thread; the work runs on the store's
//     executor (the pool's strand), the handler on its own associated executor.
//   - Lifetimes: arguments are taken by value; `diag` must outlive the operation; the
//     store and its pool must outlive every operation started on them.
//   - Cancellation: an operation is not cancellable once started (the statement it joined
//     serves other callers); destroying the store fails waiting loads with
//     asio::error::operation_aborted.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/loader/registry.hpp"
#include "dataloader/result.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/store/detail/completion.hpp"
#include "dataloader/store/consistency.hpp"
#include "dataloader/store/options.hpp"
#include "dataloader/store/stats.hpp"
#include "dataloader/store/types.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dataloader::store {

namespace asio = boost::asio;

namespace detail {
class store_impl;
}

class memory_store {
 public:
  using executor_type = pg::connection_pool::executor_type;

  // The pool must outlive the store. Loaders report to `registry` when given.
  memory_store(pg::connection_pool& pool, store_options options = {},
               loader_registry* registry = nullptr);
  // Reads spread over streaming replicas of `primary` (each pool on one replica; every pool
  // must outlive the store): a read goes to a replica that is connected, in recovery, at
  // most store_options::max_replica_lag behind, and has replayed both the read's
  // min_position and this store's own latest write of the users it reads (read-your-writes
  // without positions); otherwise to the primary. Writes always go to the primary. Each
  // server gets its own batches. Replicas are probed in the background while the store lives.
  memory_store(pg::connection_pool& primary, std::span<pg::connection_pool* const> replicas,
               store_options options = {}, loader_registry* registry = nullptr);
  ~memory_store();
  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  executor_type get_executor() const noexcept;
  const store_options& options() const noexcept;
  store_stats stats() const;

  using default_token = asio::default_completion_token_t<executor_type>;

  // Profile, recent memories (newest first, at most `memory_limit`, 1 to 100), onboarding
  // state and memory count of a user. Completes with void(error_code, prefetch_result).
  template <class CompletionToken = default_token>
  auto async_prefetch(std::string user_id, int memory_limit, CompletionToken&& token = {}) {
    return start(prefetch(std::move(user_id), memory_limit, nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_prefetch(std::string user_id, int memory_limit, diagnostics& diag, CompletionToken&& token = {}) {
    return start(prefetch(std::move(user_id), memory_limit, nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_prefetch(std::string user_id, int memory_limit, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(prefetch(std::move(user_id), memory_limit, &position), &diag, std::forward<CompletionToken>(token));
  }

  // A prefetch answered at once on the calling thread, when the cache across requests
  // (store_options::cache_entries) holds the user at position.min_position or later; sets
  // position.position then. nullopt when it does not (not cached, cache off or not
  // serving, or arguments that async_prefetch refuses): ask async_prefetch, which also
  // fills the cache. Never waits; thread-safe; counted in stats() like async_prefetch.
  std::optional<cached_prefetch> try_cached_prefetch(const std::string& user_id, int memory_limit,
                                                     consistency& position);
  // Keeps `rendering` with the snapshot of `hit` (from try_cached_prefetch for user_id), if
  // the cache still holds that snapshot and nothing was kept for it yet; later hits on it
  // carry it. Thread-safe.
  void keep_rendering(const std::string& user_id, const cached_prefetch& hit,
                      std::shared_ptr<const snapshot_rendering> rendering);

  // One entry per id, in order; nullopt for a user without a profile. Completes with
  // void(error_code, std::vector<std::optional<std::string>>).
  template <class CompletionToken = default_token>
  auto async_get_profiles(std::vector<std::string> ids, CompletionToken&& token = {}) {
    return start(get_profiles(std::move(ids), nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_profiles(std::vector<std::string> ids, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_profiles(std::move(ids), nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_profiles(std::vector<std::string> ids, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_profiles(std::move(ids), &position), &diag, std::forward<CompletionToken>(token));
  }

  // One entry per id, in order; nullopt for a user without onboarding state. Completes
  // with void(error_code, std::vector<std::optional<nlohmann::json>>).
  template <class CompletionToken = default_token>
  auto async_get_onboarding(std::vector<std::string> ids, CompletionToken&& token = {}) {
    return start(get_onboarding(std::move(ids), nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_onboarding(std::vector<std::string> ids, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_onboarding(std::move(ids), nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_onboarding(std::vector<std::string> ids, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_onboarding(std::move(ids), &position), &diag, std::forward<CompletionToken>(token));
  }

  // A user's `limit` (1 to 100) most recently updated memories and their count. Completes
  // with void(error_code, recent_memories).
  template <class CompletionToken = default_token>
  auto async_get_recent_memories(std::string user_id, int limit, CompletionToken&& token = {}) {
    return start(get_recent_memories(std::move(user_id), limit, nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_recent_memories(std::string user_id, int limit, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_recent_memories(std::move(user_id), limit, nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_recent_memories(std::string user_id, int limit, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_recent_memories(std::move(user_id), limit, &position), &diag, std::forward<CompletionToken>(token));
  }

  // A page of a user's memories matching `filter`, newest first: at most filter.limit (1 to
  // 1000), continuing after filter.after (a previous page's `next`; a cursor that is not
  // one, or is of another user or filter, is errc::invalid_argument naming `after`).
  // Completes with void(error_code, memory_page). Pages of many users read in one tick
  // are one statement.
  template <class CompletionToken = default_token>
  auto async_get_memories(std::string user_id, memory_filter filter, CompletionToken&& token = {}) {
    return start(get_memories(std::move(user_id), std::move(filter), nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_memories(std::string user_id, memory_filter filter, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_memories(std::move(user_id), std::move(filter), nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_get_memories(std::string user_id, memory_filter filter, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(get_memories(std::move(user_id), std::move(filter), &position), &diag, std::forward<CompletionToken>(token));
  }

  // Upserts on (user_id, category, key); several entries for one key: the last wins.
  // Completes with void(error_code, std::int64_t): the rows written.
  template <class CompletionToken = default_token>
  auto async_save_memories(std::vector<memory_input> items, CompletionToken&& token = {}) {
    return start(save_memories(std::move(items), nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_save_memories(std::vector<memory_input> items, diagnostics& diag, CompletionToken&& token = {}) {
    return start(save_memories(std::move(items), nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_save_memories(std::vector<memory_input> items, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(save_memories(std::move(items), &position), &diag, std::forward<CompletionToken>(token));
  }

  // Deletes a user's memories by key; with a category, only within it. Completes with
  // void(error_code, std::int64_t): the memories deleted.
  template <class CompletionToken = default_token>
  auto async_delete_memories(std::string user_id, std::vector<std::string> keys,
                             std::optional<std::string> category, CompletionToken&& token = {}) {
    return start(delete_memories(std::move(user_id), std::move(keys), std::move(category), nullptr), nullptr,
                 std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_delete_memories(std::string user_id, std::vector<std::string> keys,
                             std::optional<std::string> category, diagnostics& diag, CompletionToken&& token = {}) {
    return start(delete_memories(std::move(user_id), std::move(keys), std::move(category), nullptr), &diag,
                 std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_delete_memories(std::string user_id, std::vector<std::string> keys,
                             std::optional<std::string> category, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(delete_memories(std::move(user_id), std::move(keys), std::move(category), &position), &diag,
                 std::forward<CompletionToken>(token));
  }

  // The newest `limit_per_category` (1 to 100) memories of each category; every asked
  // category appears, maybe empty. Completes with void(error_code, search_results).
  template <class CompletionToken = default_token>
  auto async_search(std::string user_id, std::vector<std::string> categories, int limit_per_category,
                    CompletionToken&& token = {}) {
    return start(search(std::move(user_id), std::move(categories), limit_per_category, nullptr), nullptr,
                 std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_search(std::string user_id, std::vector<std::string> categories, int limit_per_category,
                    diagnostics& diag, CompletionToken&& token = {}) {
    return start(search(std::move(user_id), std::move(categories), limit_per_category, nullptr), &diag,
                 std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_search(std::string user_id, std::vector<std::string> categories, int limit_per_category,
                    consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(search(std::move(user_id), std::move(categories), limit_per_category, &position), &diag,
                 std::forward<CompletionToken>(token));
  }

  // Sets a user's profile (at most 64 KiB). Completes with void(error_code, bool): true.
  template <class CompletionToken = default_token>
  auto async_put_profile(std::string user_id, std::string profile, CompletionToken&& token = {}) {
    return start(put_profile(std::move(user_id), std::move(profile), nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_put_profile(std::string user_id, std::string profile, diagnostics& diag, CompletionToken&& token = {}) {
    return start(put_profile(std::move(user_id), std::move(profile), nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_put_profile(std::string user_id, std::string profile, consistency& position, diagnostics& diag, CompletionToken&& token = {}) {
    return start(put_profile(std::move(user_id), std::move(profile), &position), &diag, std::forward<CompletionToken>(token));
  }

  // Sets a user's onboarding state (a JSON object, at most 64 KiB as text and 128 levels
  // deep). Completes with void(error_code, bool): true.
  template <class CompletionToken = default_token>
  auto async_put_onboarding(std::string user_id, nlohmann::json state, CompletionToken&& token = {}) {
    return start(put_onboarding(std::move(user_id), std::move(state), nullptr), nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_put_onboarding(std::string user_id, nlohmann::json state, diagnostics& diag,
                            CompletionToken&& token = {}) {
    return start(put_onboarding(std::move(user_id), std::move(state), nullptr), &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken = default_token>
  auto async_put_onboarding(std::string user_id, nlohmann::json state, consistency& position, diagnostics& diag,
                            CompletionToken&& token = {}) {
    return start(put_onboarding(std::move(user_id), std::move(state), &position), &diag, std::forward<CompletionToken>(token));
  }

 private:
  template <class T, class CompletionToken>
  auto start(asio::awaitable<result<T>> op, diagnostics* diag, CompletionToken&& token) {
    return detail::complete_as_error_code(get_executor(), std::move(op), diag, std::forward<CompletionToken>(token));
  }

  // Coroutines that run on the store's executor (the pool's strand). `position`: null, or
  // the caller's consistency (read: min_position; set: position).
  asio::awaitable<result<prefetch_result>> prefetch(std::string user_id, int memory_limit, consistency* position);
  asio::awaitable<result<std::vector<std::optional<std::string>>>> get_profiles(std::vector<std::string> ids,
                                                                                consistency* position);
  asio::awaitable<result<std::vector<std::optional<nlohmann::json>>>> get_onboarding(std::vector<std::string> ids,
                                                                                     consistency* position);
  asio::awaitable<result<store::recent_memories>> get_recent_memories(std::string user_id, int limit,
                                                                      consistency* position);
  asio::awaitable<result<memory_page>> get_memories(std::string user_id, memory_filter filter,
                                                    consistency* position);
  asio::awaitable<result<std::int64_t>> save_memories(std::vector<memory_input> items, consistency* position);
  asio::awaitable<result<std::int64_t>> delete_memories(std::string user_id, std::vector<std::string> keys,
                                                        std::optional<std::string> category, consistency* position);
  asio::awaitable<result<search_results>> search(std::string user_id, std::vector<std::string> categories,
                                                 int limit_per_category, consistency* position);
  asio::awaitable<result<bool>> put_profile(std::string user_id, std::string profile, consistency* position);
  asio::awaitable<result<bool>> put_onboarding(std::string user_id, nlohmann::json state, consistency* position);

  std::shared_ptr<detail::store_impl> impl_;
};

}  // namespace dataloader::store
