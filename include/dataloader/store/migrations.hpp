// Versioned schema migrations, recorded in schema_migrations and applied under a
// PostgreSQL advisory lock, so that instances starting together never race.
#pragma once

#include "dataloader/result.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/store/detail/completion.hpp"

#include <boost/asio/awaitable.hpp>

#include <limits>
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

namespace detail {
// Applies the pending migrations up to and including `up_to_version` (tests build a
// database at an older schema this way, then upgrade it).
boost::asio::awaitable<result<int>> migrate(pg::connection_pool& pool,
                                           int up_to_version = std::numeric_limits<int>::max());
}

// Applies the pending migrations. Completes with void(error_code, int): how many were
// applied. Safe to run from several processes at once (an advisory lock orders them);
// `diag` (when given) must outlive the operation; not cancellable.
template <class CompletionToken = boost::asio::default_completion_token_t<pg::connection_pool::executor_type>>
auto async_migrate(pg::connection_pool& pool, CompletionToken&& token = {}) {
  return detail::complete_as_error_code(pool.get_executor(), detail::migrate(pool), nullptr,
                                        std::forward<CompletionToken>(token));
}
template <class CompletionToken = boost::asio::default_completion_token_t<pg::connection_pool::executor_type>>
auto async_migrate(pg::connection_pool& pool, diagnostics& diag, CompletionToken&& token = {}) {
  return detail::complete_as_error_code(pool.get_executor(), detail::migrate(pool), &diag,
                                        std::forward<CompletionToken>(token));
}

}  // namespace dataloader::store
