#pragma once

#include <chrono>
#include <cstddef>

namespace dataloader::store {

struct store_options {
  // Keys per loader batch call, and items per write statement.
  std::size_t max_batch_size = 1000;
  // 0: a batch is ready at the end of the current tick.
  std::chrono::microseconds batch_window{0};
  // A ready batch that would only queue behind round trips already in flight on every
  // connection of the pool (connection_pool::saturated()) keeps gathering keys until a
  // connection can take it (or it is full); otherwise it goes at once. false: it goes
  // when ready.
  bool smart_batching = true;
  // false: the N+1 baseline. Every lookup, saved item, deleted key and searched category
  // is its own statement (prefetch: profile, memories, count and onboarding separately),
  // with the same results. For comparison only.
  bool coalesce = true;

  // With replicas (memory_store's replica pools): a replica further behind the primary
  // than this is not read from; it is probed (pg_is_in_recovery(), its replay position)
  // every replica_probe_interval, and the primary's position sampled as often.
  std::chrono::milliseconds max_replica_lag{1000};
  std::chrono::milliseconds replica_probe_interval{50};
  // Users whose latest write this instance must still read at or after (until every
  // replica has replayed it): past this many, one floor applies to all users instead.
  std::size_t max_tracked_writes = 100'000;

  // Users' snapshots (what a prefetch returns) and profiles kept across operations, at most
  // this many users (least recently used go first), each for at most cache_ttl; 0: none.
  // Coherent through PostgreSQL notifications (README "Cache coherence"): the store
  // LISTENs on dataloader_invalidate over a connection of its own to the primary, and
  // serves from the cache only while it is listening. Only the batched path uses it
  // (not coalesce = false).
  std::size_t cache_entries = 0;
  std::chrono::milliseconds cache_ttl{60'000};
  // How often the listening connection checks that the server still answers.
  std::chrono::milliseconds cache_heartbeat{1'000};
};

}  // namespace dataloader::store
