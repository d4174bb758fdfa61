// One server the store reads from: the primary, or a streaming replica. Each has its own
// pool and its own loaders, so reads are batched per server (one statement per kind per
// tick on each). Everything here runs on the store's executor (the primary pool's strand);
// a replica's pool completes its statements back there.
#pragma once

#include "outcome.hpp"

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/loader/loader.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/pg/lsn.hpp"
#include "dataloader/store/types.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace dataloader::store::detail {

class store_impl;

// A user and how many of their newest memories to read.
struct snapshot_key {
  std::string user_id;
  int limit = 0;
  friend bool operator==(const snapshot_key&, const snapshot_key&) = default;
};
struct snapshot_key_hash {
  std::size_t operator()(const snapshot_key& k) const noexcept {
    return std::hash<std::string>{}(k.user_id) * 31 + static_cast<std::size_t>(k.limit);
  }
};

// One page of a listing: the user, the filter, where it continues and how many rows.
// `epoch` is the store's reads_epoch when the read began: a page read never joins a batch
// begun before a write that may have changed the listing (store_impl::reads_epoch).
struct page_key {
  std::string user_id;
  std::string category;  // empty: any
  std::optional<std::vector<std::string>> keys;
  timestamp after_updated_at = timestamp::max();  // max: from the newest
  std::string after_category, after_key;
  int rows = 0;
  std::uint64_t epoch = 0;
  friend bool operator==(const page_key&, const page_key&) = default;
};
struct page_key_hash {
  std::size_t operator()(const page_key& k) const noexcept;
};

class read_host {
 public:
  read_host(store_impl& store, pg::connection_pool& pool, bool primary);
  read_host(const read_host&) = delete;
  read_host& operator=(const read_host&) = delete;

  store_impl& store;
  pg::connection_pool& pool;
  const bool primary;

  loader<std::string, std::optional<std::string>> profiles;
  loader<std::string, std::optional<nlohmann::json>> onboarding;
  // Profile, onboarding state, memory count and newest memories of a user, in one
  // statement per batch: serves prefetch and recent memories alike.
  loader<snapshot_key, prefetch_result, snapshot_key_hash> snapshots;
  // Pages of memory listings (sql::memory_pages): up to `rows` memories each.
  loader<page_key, std::vector<memory>, page_key_hash> pages;

  // Every read statement goes through these (counted in the store's queries; resent once
  // on a lost connection). While it runs, what it may claim is held in reads_in_flight.
  asio::awaitable<query_outcome> query(const pg::statement& st, pg::params args);
  asio::awaitable<group_outcome> group(std::vector<pg::query> queries);

  // The position a statement sent now may claim: on the primary, the store's observed
  // position - 1 (store_impl); on a replica, its replay position as last probed (every
  // write at or before it has been replayed, so is visible there).
  pg::lsn claim_now() const;
  // What a read starting now may claim: it may join a statement already in flight.
  pg::lsn claim_floor() const;

  // Replica state, written by the store's probe (store_impl::probe_replicas) on the
  // store's strand; atomics because stats() reads them from any thread.
  struct replica_state {
    std::atomic<bool> connected{false};    // the latest probe answered
    std::atomic<bool> in_recovery{false};  // it is a standby (a promoted one is not read from)
    std::atomic<std::uint64_t> replayed{0};  // pg_last_wal_replay_lsn() at the latest probe
    std::atomic<std::int64_t> lag_ms{0};
  } state;
  pg::lsn replayed() const { return pg::lsn{state.replayed.load(std::memory_order_relaxed)}; }
  bool usable(std::chrono::milliseconds max_lag) const {
    return primary || (state.connected.load(std::memory_order_relaxed) &&
                       state.in_recovery.load(std::memory_order_relaxed) &&
                       state.lag_ms.load(std::memory_order_relaxed) <= max_lag.count());
  }

  dataloader::detail::single_writer_counter reads;  // read operations routed here

  // After a write of `user_id` committed: reads must not join batches sent before.
  void forget_user(const std::string& user_id, const std::set<int>& limits);

 private:
  std::multiset<pg::lsn> reads_in_flight_;
};

}  // namespace dataloader::store::detail
