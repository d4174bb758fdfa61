// How a connection pool connects, sizes itself and bounds its waits.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>

namespace dataloader::pg {

// Pipelining sends everything one tick gathered over a single connection in one round
// trip, so a few connections keep a server busy; more mostly add server processes and
// split a tick's statements over several round trips. One per core, at least two (so a
// broken or leased connection never leaves the pool without one).
inline std::size_t default_pool_size() {
  return std::max<std::size_t>(2, std::thread::hardware_concurrency());
}

struct pool_params {
  // Any libpq connection string or URL ("host=/run/postgresql dbname=app",
  // "postgresql://user:secret@db:5432/app"). The pool adds client_encoding=UTF8,
  // DateStyle=ISO and TimeZone=UTC, which decoding relies on.
  std::string conninfo;
  std::size_t size = default_pool_size();
  std::chrono::milliseconds connect_timeout{5'000};
  // How long a query or an acquire waits for a usable connection before pool_timeout.
  std::chrono::milliseconds acquire_timeout{2'000};
  // Default deadline of a statement group; past it the server is asked to cancel it.
  std::chrono::milliseconds statement_timeout{10'000};
  // Reconnect backoff: starts here, doubles per failed attempt, capped. The cap bounds how
  // long after the database is back the pool may still be waiting to try it.
  std::chrono::milliseconds retry_interval{100};
  std::chrono::milliseconds max_retry_interval{500};
  // Plan each prepared statement once (plan_cache_mode = force_generic_plan). Batch
  // statements take arrays of keys; their best plan does not depend on the values, yet
  // PostgreSQL's default re-plans them on every execution, because it prices the generic
  // plan from a guessed array size (measured: 0.24 ms of planning for a 0.4 ms prefetch
  // batch). Turn off when a statement's best plan depends on its parameter values.
  bool generic_plans = true;

  // Round trips in flight on every open connection at which the pool counts as saturated
  // (connection_pool::saturated(), what smart batching waits on). 2: one executing and one
  // already sent behind it, so the server goes from one batch to the next without waiting
  // for the client; beyond that a batch gathers keys instead of queueing. Measured at 64
  // HTTP connections (prefetch, 2 pool connections, medians of 3): 13,047 requests/s at
  // 2 against 11,875 at 1.
  std::size_t saturated_at_round_trips = 2;
};

// Whether libpq can parse `conninfo` (a URL or a key=value list); when not, `message` has
// libpq's reason. Connects to nothing: for refusing a mistyped setting at start.
bool valid_conninfo(const std::string& conninfo, std::string& message);

}  // namespace dataloader::pg
