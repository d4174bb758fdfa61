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
  // Reconnect backoff: starts here, doubles per failed attempt, capped.
  std::chrono::milliseconds retry_interval{100};
  std::chrono::milliseconds max_retry_interval{1'000};
};

}  // namespace dataloader::pg
