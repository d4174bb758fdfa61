// The store's counters (SPEC.md /stats).
//
// queries counts every statement the store sends to PostgreSQL, retries included. It does
// not count migrations or health checks, which are sent outside the store; so it equals
// what pg_stat_statements records for the store's statements.
//
// queries_saved compares with what a one-statement-per-lookup implementation sends for
// the same calls: prefetch 4 per user (profile, recent memories, memory count,
// onboarding); profiles and onboarding 1 per id; recent memories 2 per user; get
// memories 1; saves 1 per item; deletes 1 per key; search 1 per category; put profile
// and put onboarding 1 each; and, as the store sends them, 1 per write operation for its
// position (consistency.hpp) and 1 per read whose min_position had to be checked.
// Replica probes are not store statements (they count in each host's pool statements).
#pragma once

#include "dataloader/loader/stats.hpp"
#include "dataloader/pg/lsn.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dataloader::store {

// A server the store reads from (SPEC "Beyond one process": /stats db.hosts).
struct host_stats {
  std::string role;             // "primary" or "replica"; a replica URL whose server is not
                                // in recovery (promoted) shows as "primary" and is not read from
  bool connected = false;       // primary: a pool connection is up; replica: its latest probe answered
  std::int64_t lag_ms = 0;      // replica: how long ago the primary passed its replay position
  pg::lsn replayed;             // replica: its replay position at the latest probe
  std::uint64_t statements = 0; // sent on its pool
  std::uint64_t reads = 0;      // store read operations routed to it
};

// The cache across operations (store_options::cache_entries; SPEC /stats "cache").
struct cache_stats {
  bool enabled = false;
  bool serving = false;             // listening and caught up: lookups may hit
  std::uint64_t entries = 0;        // users with something cached
  std::uint64_t bytes = 0;          // their approximate size in memory
  std::uint64_t hits = 0;           // lookups answered from the cache (per user)
  std::uint64_t misses = 0;         // lookups that read the database (per user)
  std::uint64_t invalidations = 0;  // users dropped by a notification or by this store's own write
  std::uint64_t resyncs = 0;        // times everything was dropped: the listener lost its
                                    // connection, or a notification named all users
  std::uint64_t notifications = 0;  // received on dataloader_invalidate
  std::uint64_t stale_fills = 0;    // reads not kept: their user was invalidated meanwhile
};

struct store_stats {
  std::uint64_t total_operations = 0;  // calls into the store
  std::uint64_t loads = 0;             // key lookups requested from the store's loaders
  std::uint64_t queries = 0;           // statements sent
  std::uint64_t naive_queries = 0;     // what one statement per lookup would have sent
  std::uint64_t retried_statements = 0;  // statements resent by write bisection
  // With replicas: reads sent to the primary although a replica was usable, because none
  // had replayed the position they needed (a min_position, or this store's own write).
  std::uint64_t reads_held_to_primary = 0;
  std::int64_t queries_saved() const noexcept {
    return static_cast<std::int64_t>(naive_queries) - static_cast<std::int64_t>(queries);
  }
  double efficiency_gain() const noexcept {
    return queries == 0 ? 0.0 : static_cast<double>(queries_saved()) / static_cast<double>(queries);
  }
  std::map<std::string, loader_stats> loaders;
  std::vector<host_stats> hosts;  // the primary first, then each replica
  cache_stats cache;
  // Statements past the pools' slow_statement_threshold, by name, over every server.
  std::map<std::string, std::uint64_t> slow_statements;
};

}  // namespace dataloader::store
