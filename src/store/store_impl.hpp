// The store's machinery: loaders for reads, coalesced writers for writes, counters.
// Everything here runs on the pool's strand.
#pragma once

#include "batch_writes.hpp"
#include "coalesced_writer.hpp"
#include "outcome.hpp"

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/loader/loader.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/pg/lsn.hpp"
#include "dataloader/store/consistency.hpp"
#include "dataloader/store/options.hpp"
#include "dataloader/store/types.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>

namespace dataloader::store::detail {

using counter = dataloader::detail::single_writer_counter;

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

// How a read proceeds under consistency.hpp's promise.
struct read_plan {
  pg::lsn position;    // what the answer may claim
  bool fresh = false;  // must not join a batch already in flight (it may predate a write the caller saw)
};

class store_impl {
 public:
  store_impl(pg::connection_pool& pool, store_options options, loader_registry* registry);

  pg::connection_pool& pool;
  store_options options;
  loader_registry* registry;
  counter total_operations, queries, naive_queries, retried_statements;

  loader<std::string, std::optional<std::string>> profiles;
  loader<std::string, std::optional<nlohmann::json>> onboarding;
  // Profile, onboarding state, memory count and newest memories of a user, in one
  // statement per batch: serves prefetch and recent memories alike.
  loader<snapshot_key, prefetch_result, snapshot_key_hash> snapshots;
  std::set<int> limits_seen;  // to clear every (user, limit) key of a written user

  coalesced_writer<save_request, std::int64_t> saves;
  coalesced_writer<put_request, bool> profile_puts;
  coalesced_writer<put_request, bool> onboarding_puts;
  coalesced_writer<delete_request, std::int64_t> deletes;

  // Every statement the store sends goes through these two (and is counted); reads may
  // be resent once on a lost connection, writes never. A write group is followed, in the
  // same round trip, by the read of the position after its commit
  // (query_options::position_after_commit): `observed` has passed it by the time the
  // group's caller resumes.
  asio::awaitable<query_outcome> query(const pg::statement& st, pg::params args, bool read);
  asio::awaitable<group_outcome> group(std::vector<pg::query> queries, bool read);
  // The statement a write operation adds to its round trip: the read of its position.
  static constexpr std::uint64_t write_overhead = 1;

  // Positions in the primary's write-ahead log (consistency.hpp).
  //
  // `observed`: the newest insert position read from the primary, after a commit or by a
  // check. A transaction whose commit was not yet visible when it was read has its writer
  // read its own position later, so at or after `observed`: every write positioned before
  // `observed` was visible then, and a statement sent afterwards sees it. Such a statement
  // may claim `observed` - 1, and is held in `reads_in_flight` until it completes: a read
  // that joins a batch claims no more than the oldest statement in flight.
  pg::lsn observed;
  std::multiset<pg::lsn> reads_in_flight;
  loader<int, pg::lsn> primary_position;  // checks of min_position: one statement per tick

  // Before a read: refuses a min_position beyond the primary's (errc::invalid_argument),
  // and says what the answer may claim and whether it must start a fresh batch.
  asio::awaitable<result<read_plan>> begin_read(const consistency* c);
  // After a write succeeded: its position.
  void end_write(consistency* c) const {
    if (c != nullptr) c->position = observed;
  }

  // After a write commits: later reads of these users must not join older batches.
  void forget_user(const std::string& user_id);

 private:
  loader_options loader_opts(const char* name) const;
  pg::lsn claim_now() const { return pg::lsn{observed.value == 0 ? 0 : observed.value - 1}; }
  void observe(pg::lsn p) { observed = std::max(observed, p); }
  template <class Request, class Response>
  coalesced_writer<Request, Response> writer(const char* name,
                                             typename coalesced_writer<Request, Response>::build_fn build,
                                             typename coalesced_writer<Request, Response>::answer_fn answer);
};

}  // namespace dataloader::store::detail
