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
// Operations complete with void(std::exception_ptr, dataloader::result<T>); the error of
// a failed operation is in the result (the exception_ptr is for bugs only).
#pragma once

#include "dataloader/loader/registry.hpp"
#include "dataloader/loader/result.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/store/options.hpp"
#include "dataloader/store/stats.hpp"
#include "dataloader/store/types.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <memory>
#include <optional>
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
  ~memory_store();
  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  executor_type get_executor() const noexcept;
  const store_options& options() const noexcept;
  store_stats stats() const;

#define DATALOADER_STORE_OP(name, T, params, args)                                     \
  template <class CompletionToken>                                                     \
  auto async_##name(DATALOADER_UNPAREN params, CompletionToken&& token) {              \
    return asio::co_spawn(get_executor(), name args, std::forward<CompletionToken>(token)); \
  }
#define DATALOADER_UNPAREN(...) __VA_ARGS__

  // Profile, recent memories (newest first), onboarding state and memory count of a user.
  DATALOADER_STORE_OP(prefetch, prefetch_result, (std::string user_id, int memory_limit), (std::move(user_id), memory_limit))
  // One entry per id, in order; nullopt for a user without a profile.
  DATALOADER_STORE_OP(get_profiles, std::vector<std::optional<std::string>>, (std::vector<std::string> ids), (std::move(ids)))
  DATALOADER_STORE_OP(get_onboarding, std::vector<std::optional<nlohmann::json>>, (std::vector<std::string> ids), (std::move(ids)))
  DATALOADER_STORE_OP(get_recent_memories, recent_memories, (std::string user_id, int limit), (std::move(user_id), limit))
  DATALOADER_STORE_OP(get_memories, std::vector<memory>, (std::string user_id, memory_filter filter), (std::move(user_id), std::move(filter)))
  // Upserts on (user_id, category, key); several entries for one key: the last wins.
  // Yields the number of rows written.
  DATALOADER_STORE_OP(save_memories, std::int64_t, (std::vector<memory_input> items), (std::move(items)))
  // Yields the number of memories deleted. With a category, only within it.
  DATALOADER_STORE_OP(delete_memories, std::int64_t, (std::string user_id, std::vector<std::string> keys, std::optional<std::string> category), (std::move(user_id), std::move(keys), std::move(category)))
  DATALOADER_STORE_OP(search, search_results, (std::string user_id, std::vector<std::string> categories, int limit_per_category), (std::move(user_id), std::move(categories), limit_per_category))
  DATALOADER_STORE_OP(put_profile, bool, (std::string user_id, std::string profile), (std::move(user_id), std::move(profile)))
  DATALOADER_STORE_OP(put_onboarding, bool, (std::string user_id, nlohmann::json state), (std::move(user_id), std::move(state)))

#undef DATALOADER_STORE_OP
#undef DATALOADER_UNPAREN

 private:
  // Coroutines that run on the store's executor (the pool's strand).
  asio::awaitable<result<prefetch_result>> prefetch(std::string user_id, int memory_limit);
  asio::awaitable<result<std::vector<std::optional<std::string>>>> get_profiles(std::vector<std::string> ids);
  asio::awaitable<result<std::vector<std::optional<nlohmann::json>>>> get_onboarding(std::vector<std::string> ids);
  asio::awaitable<result<store::recent_memories>> get_recent_memories(std::string user_id, int limit);
  asio::awaitable<result<std::vector<memory>>> get_memories(std::string user_id, memory_filter filter);
  asio::awaitable<result<std::int64_t>> save_memories(std::vector<memory_input> items);
  asio::awaitable<result<std::int64_t>> delete_memories(std::string user_id, std::vector<std::string> keys,
                                                        std::optional<std::string> category);
  asio::awaitable<result<search_results>> search(std::string user_id, std::vector<std::string> categories,
                                                 int limit_per_category);
  asio::awaitable<result<bool>> put_profile(std::string user_id, std::string profile);
  asio::awaitable<result<bool>> put_onboarding(std::string user_id, nlohmann::json state);

  std::shared_ptr<detail::store_impl> impl_;
};

}  // namespace dataloader::store
