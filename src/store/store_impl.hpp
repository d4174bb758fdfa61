// The store's machinery: loaders for reads, coalesced writers for writes, counters.
// Everything here runs on the pool's strand.
#pragma once

#include "batch_writes.hpp"
#include "coalesced_writer.hpp"
#include "outcome.hpp"
#include "read_host.hpp"
#include "user_cache.hpp"

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/loader/loader.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/pg/listener.hpp"
#include "dataloader/pg/lsn.hpp"
#include "dataloader/store/consistency.hpp"
#include "dataloader/store/options.hpp"
#include "dataloader/store/types.hpp"

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace dataloader::store::detail {

using counter = dataloader::detail::single_writer_counter;

// A counter written from any thread (memory_store::try_cached_prefetch counts on its
// caller's thread).
class shared_counter {
 public:
  void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// How a read proceeds under consistency.hpp's promise.
struct read_plan {
  read_host* host = nullptr;  // where it is read
  pg::lsn position;           // what the answer may claim
  bool fresh = false;         // must not join a batch already in flight (it may predate a write the caller saw)
};

class store_impl : public std::enable_shared_from_this<store_impl> {
 public:
  store_impl(pg::connection_pool& pool, std::span<pg::connection_pool* const> replicas, store_options options,
             loader_registry* registry);
  store_impl(const store_impl&) = delete;
  store_impl& operator=(const store_impl&) = delete;

  pg::connection_pool& pool;  // the primary: every write, and reads no replica can serve
  store_options options;
  loader_registry* registry;
  shared_counter total_operations, naive_queries;
  counter queries, retried_statements;
  // Reads sent to the primary although a replica was usable, because none had replayed
  // the position they needed (a token, or this instance's own write of the user).
  counter reads_held_to_primary;

  // hosts[0] is the primary; the replicas follow in the order given.
  std::vector<std::unique_ptr<read_host>> hosts;
  read_host& primary_host() { return *hosts.front(); }
  std::set<int> limits_seen;  // to clear every (user, limit) key of a written user
  // Advances whenever data may have changed (invalidate, forget_everything_in_flight):
  // page reads carry it in their keys, so a page read never joins a batch begun before
  // (pages have too many keys per user to clear one by one).
  std::uint64_t reads_epoch = 0;

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
  pg::lsn primary_claim() const { return pg::lsn{observed.value == 0 ? 0 : observed.value - 1}; }
  loader<int, pg::lsn> primary_position;  // checks of min_position: one statement per tick

  // Before a read of `users`' data: refuses a min_position beyond the primary's
  // (errc::invalid_argument); picks the server (a usable replica that has replayed both
  // the min_position and this instance's own latest write of those users, else the
  // primary); says what the answer may claim and whether it must start a fresh batch.
  asio::awaitable<result<read_plan>> begin_read(const consistency* c, std::span<const std::string> users);
  // After a write of `users` committed: later reads of them here must not join older
  // batches, and must be served at or after its position. Sets the caller's position.
  void end_write(consistency* c, std::span<const std::string> users);

  // Replicas probed every store_options::replica_probe_interval, and the cache's listener,
  // while the store lives.
  void start_background();
  asio::awaitable<void> probe_replicas();

  // The position each user must be read at here, for the users this instance wrote and
  // not every replica has replayed yet; bounded by store_options::max_tracked_writes.
  // Past the bound the map is emptied into `untracked_floor`, which then applies to every
  // user (a read may go to the primary more often; it never goes stale).
  std::unordered_map<std::string, pg::lsn> written_at;
  pg::lsn untracked_floor;

  // The cache across operations (user_cache.hpp), kept coherent by `listener`.
  user_cache cache;
  std::unique_ptr<pg::listener> listener;
  // With replicas, a change another client made is treated like this store's own write:
  // from its notification until the primary's position after it is known, its users are
  // read from the primary; then at or after that position (written_at). Otherwise a
  // replica that has not replayed the change could put its old data back in the cache.
  std::unordered_map<std::string, int> awaiting_position;
  int everyone_awaiting_position = 0;  // a notification named all users, or the listener reconnected

  loader_options loader_opts(const char* name, pg::connection_pool& for_pool) const;

 private:
  void observe(pg::lsn p) { observed = std::max(observed, p); }
  void track_written(std::span<const std::string> users, pg::lsn at);
  void invalidate(std::span<const std::string> users);
  void on_notification(const pg::notification& n);
  void on_listening();
  // Once the primary's position after now is known: `users` (all users when null) need
  // no longer be read from the primary alone; then `then` runs.
  void position_after_notification(std::shared_ptr<std::vector<std::string>> users, std::function<void()> then);
  void forget_everything_in_flight();
  read_host* pick_replica(pg::lsn at_least);
  std::size_t next_replica_ = 0;
  // The primary's flush position over the last moments, oldest first: a replica's lag is
  // how long ago the primary passed the position the replica has replayed.
  std::deque<std::pair<std::chrono::steady_clock::time_point, pg::lsn>> primary_history_;
  std::unique_ptr<asio::steady_timer> probe_timer_;
  template <class Request, class Response>
  coalesced_writer<Request, Response> writer(const char* name,
                                             typename coalesced_writer<Request, Response>::build_fn build,
                                             typename coalesced_writer<Request, Response>::answer_fn answer);
};

}  // namespace dataloader::store::detail
