// Test support for the memory store: a pool, a migrated schema, a store, and helpers
// that read PostgreSQL's own counters.
#pragma once

#include "../pg/support.hpp"

#include "dataloader/store/memory_store.hpp"
#include "dataloader/store/migrations.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace test {

namespace store = dataloader::store;

// Runs `f(pool, store)` with a migrated schema.
template <class F>
void with_store(F&& f, store::store_options options = {}, std::size_t pool_size = 2) {
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, params(pool_size));
    pool.start();
    dataloader::diagnostics d;
    auto [ec, applied] = co_await store::async_migrate(pool, d, asio::as_tuple(asio::use_awaitable));
    if (ec) throw std::runtime_error("migrate: " + dataloader::describe(ec, d));
    dataloader::loader_registry registry;
    store::memory_store s(pool, options, &registry);
    co_await f(pool, s);
    pool.close();
  });
}

// What a store operation completed with: its value, or its error code and message.
template <class T>
dataloader::result<T> outcome(dataloader::error_code ec, T value, const dataloader::diagnostics& d) {
  if (ec) return dataloader::failure{ec, d.message()};
  return value;
}

inline const pg::statement count_user{"test_count_user", "SELECT count(*) FROM memories WHERE user_id = $1::text"};

inline const pg::statement stat_reset{"test_stat_reset", "SELECT pg_stat_statements_reset()"};
inline const pg::statement stat_calls{"test_stat_calls",
    "SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query NOT ILIKE '%pg_stat_statements%'"};

// Statement executions PostgreSQL recorded since the last reset.
inline asio::awaitable<std::int64_t> statements_counted(pg::connection_pool& pool) {
  dataloader::diagnostics d;
  auto [ec, r] = co_await pool.async_query(stat_calls, {}, {}, d, asio::as_tuple(asio::use_awaitable));
  if (ec) throw std::runtime_error(d.message());
  co_return *r.get<std::int64_t>(0, 0);
}
inline asio::awaitable<void> reset_statement_counts(pg::connection_pool& pool) {
  dataloader::diagnostics d;
  auto [ec, r] = co_await pool.async_query(stat_reset, {}, {}, d, asio::as_tuple(asio::use_awaitable));
  if (ec) throw std::runtime_error(d.message());
}

inline asio::awaitable<pg::result> sql(pg::connection_pool& pool, const pg::statement& st, pg::params p = {}) {
  dataloader::diagnostics d;
  auto [ec, r] = co_await pool.async_query(st, std::move(p), {}, d, asio::as_tuple(asio::use_awaitable));
  if (ec) throw std::runtime_error(st.name + ": " + d.message());
  co_return r;
}

// A vector of strings, for coroutines: GCC 12 cannot keep braced lists in their frames.
template <class... T>
std::vector<std::string> strings(T... t) {
  return {std::string(t)...};
}

// Store options with coalescing on (batched) or off (the N+1 baseline).
inline store::store_options mode(bool coalesce) {
  store::store_options o;
  o.coalesce = coalesce;
  return o;
}

}  // namespace test
