// How a connection pool connects, sizes itself and bounds its waits.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace dataloader::pg {

// Pipelining sends everything one tick gathered over a single connection in one round
// trip, so a few connections keep a server busy; more mostly add server processes and
// split a tick's statements over several round trips. One per core, at least two (so a
// broken or leased connection never leaves the pool without one).
inline std::size_t default_pool_size() {
  return std::max<std::size_t>(2, std::thread::hardware_concurrency());
}

// A statement that took longer than pool_params::slow_statement_threshold. Names, never
// values: parameters may be personal data.
struct slow_statement {
  std::string_view name;    // the prepared statement's name
  std::size_t keys;         // its batch: elements of its longest array parameter (1 without one)
  std::size_t rows;         // rows it returned or changed
  std::string_view server;  // host:port (a socket directory for a local socket)
  std::chrono::microseconds elapsed;
};

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
  //
  // With it, bitmap scans are off (enable_bitmapscan = off): a generic plan prices every
  // key as the average key, and for a key with far more rows than that it may choose a
  // bitmap scan and a sort of all of them over an index walk that stops at the LIMIT
  // (measured: page 1 of a user with 50,000 memories among users with 10 took 117 ms
  // that way, 0.7 ms by the index). Keyed batch reads never need a bitmap scan.
  bool generic_plans = true;

  // Round trips in flight on every open connection at which the pool counts as saturated
  // (connection_pool::saturated(), what smart batching waits on). 2: one executing and one
  // already sent behind it, so the server goes from one batch to the next without waiting
  // for the client; beyond that a batch gathers keys instead of queueing. Measured at 64
  // HTTP connections (prefetch, 2 pool connections, medians of 3): 13,047 requests/s at
  // 2 against 11,875 at 1.
  std::size_t saturated_at_round_trips = 2;

  // A statement slower than this is counted per name (pool_stats::slow_statements) and
  // passed to on_slow_statement, once. Its time runs from when the server could start it
  // (sent, and the statement ahead of it on the connection answered) to its last result,
  // so a statement queued behind a slow one is not blamed for the wait. With a threshold,
  // a group of several statements asks the server to flush after each one but the last
  // (the server otherwise answers a group at its sync point, all at once); a group of one
  // statement, what the store sends, costs nothing more. 0: off.
  std::chrono::milliseconds slow_statement_threshold{0};
  // Called on the pool's strand; must not block (the service writes one line to stderr).
  std::function<void(const slow_statement&)> on_slow_statement;
};

// Whether libpq can parse `conninfo` (a URL or a key=value list); when not, `message` has
// libpq's reason. Connects to nothing: for refusing a mistyped setting at start.
bool valid_conninfo(const std::string& conninfo, std::string& message);

}  // namespace dataloader::pg
