// Versioned schema migrations, recorded in schema_migrations and applied under a
// PostgreSQL advisory lock, so that instances starting together never race.
#pragma once

#include "dataloader/loader/result.hpp"
#include "dataloader/pg/connection_pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <string>
#include <vector>

namespace dataloader::store {

struct migration {
  int version;
  std::string name;
  std::vector<std::string> statements;
};

// Every migration the store knows, in version order.
const std::vector<migration>& migrations();

// Applies the pending migrations; yields how many were applied.
boost::asio::awaitable<result<int>> migrate(pg::connection_pool& pool);

template <class CompletionToken>
auto async_migrate(pg::connection_pool& pool, CompletionToken&& token) {
  return boost::asio::co_spawn(pool.get_executor(), migrate(pool), std::forward<CompletionToken>(token));
}

}  // namespace dataloader::store
