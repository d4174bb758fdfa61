// Users' snapshots and profiles kept across operations (store_options::cache_entries).
//
// Thread safety: fills, invalidations and the listener's events come from the store's
// executor; lookups may come from any thread (memory_store::try_cached_prefetch serves a
// hit on the caller's thread). One mutex guards the state; stats() reads atomics only.
//
// Invariants:
//   - nothing is served unless the cache is `serving`: enabled, and listening for
//     invalidations since everything cached before the last gap was dropped;
//   - a fill is a read that started while the cache was serving (fill ticket). It is kept
//     only if its user was not invalidated after the ticket was taken: the data may have
//     been read before that change committed. Tickets are taken before a read is planned,
//     and every invalidation also clears the loaders' keys of its users, so a read that
//     begins after an invalidation never joins a batch sent before it;
//   - an entry remembers the position (consistency.hpp) its data is at least as new as; a
//     lookup that needs a later one misses;
//   - at most `capacity` users have entries; each part expires `ttl` after it was read.
#pragma once

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/pg/lsn.hpp"
#include "dataloader/store/stats.hpp"
#include "dataloader/store/types.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace dataloader::store::detail {

class user_cache {
 public:
  using clock = std::chrono::steady_clock;

  user_cache(std::size_t capacity, std::chrono::milliseconds ttl);

  bool enabled() const noexcept { return capacity_ > 0; }
  bool serving() const noexcept { return serving_flag_.load(std::memory_order_relaxed); }

  template <class T>
  struct found {
    T value;
    pg::lsn position;
  };
  // A user's cached snapshot, if one is cached that holds its `limit` most recent memories
  // (loaded with a limit at least as large, or holding every memory of the user); it may
  // hold more. Shared and immutable: an invalidation drops the entry, not the snapshot.
  struct cached_snapshot {
    std::shared_ptr<const prefetch_result> data;
    std::shared_ptr<const snapshot_rendering> rendering;  // see keep_rendering
  };
  static constexpr bool uncounted_miss = false;
  std::optional<found<cached_snapshot>> snapshot(const std::string& user, int limit, pg::lsn at_least,
                                                 bool count_miss = true);
  // Kept with the user's snapshot if that is still `data` and holds no rendering yet.
  void keep_rendering(const std::string& user, const prefetch_result* data,
                      std::shared_ptr<const snapshot_rendering> rendering);
  std::optional<found<std::optional<std::string>>> profile(const std::string& user, pg::lsn at_least);

  // Taken before a read that may fill the cache; released when it is dropped.
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& other) noexcept : cache_(other.cache_), user_(std::move(other.user_)), taken_(other.taken_) {
      other.cache_ = nullptr;
    }
    ticket& operator=(ticket&&) = delete;
    ~ticket();
    bool valid() const noexcept { return cache_ != nullptr; }

   private:
    friend class user_cache;
    user_cache* cache_ = nullptr;
    std::string user_;
    std::uint64_t taken_ = 0;
  };
  ticket take_ticket(std::string user);  // invalid (fills nothing) when not serving
  void put_snapshot(const ticket& t, int limit, const prefetch_result& value, pg::lsn position);
  void put_profile(const ticket& t, const std::optional<std::string>& value, pg::lsn position);

  void invalidate(const std::string& user);
  // Drops everything and stops serving until resume() (the listener lost its connection).
  void suspend();
  // Drops everything (what was read before now may predate a lost notification), serves again.
  void resume();
  // Drops everything; serving goes on (a notification naming every user).
  void invalidate_all();

  cache_stats stats() const;

  dataloader::detail::single_writer_counter notifications;

 private:
  template <class T>
  struct part {
    T value;
    pg::lsn position;
    clock::time_point loaded;
  };
  struct entry {
    std::optional<part<std::shared_ptr<const prefetch_result>>> snapshot;
    int snapshot_limit = 0;
    std::shared_ptr<const snapshot_rendering> rendering;  // of `snapshot`, reset with it
    std::optional<part<std::optional<std::string>>> profile;
    std::size_t bytes = 0;
    std::list<std::string>::iterator recency;
  };
  struct fills_of_user {
    int in_flight = 0;
    std::uint64_t invalidated = 0;  // the clock at the user's latest invalidation
  };

  // Called with mutex_ held.
  bool keeps(const ticket& t);
  entry& entry_for(const std::string& user);
  void account(entry& e);
  void erase(std::unordered_map<std::string, entry>::iterator it);
  void drop_everything();
  void release(const ticket& t);
  template <class T>
  bool fresh(const std::optional<part<T>>& p, pg::lsn at_least, clock::time_point now) const {
    return p && p->position >= at_least && now - p->loaded < ttl_;
  }

  const std::size_t capacity_;
  const std::chrono::milliseconds ttl_;
  mutable std::mutex mutex_;
  bool serving_ = false;
  std::uint64_t clock_ = 0;          // advanced by every invalidation
  std::uint64_t dropped_all_at_ = 0;  // the clock when everything was last dropped
  std::unordered_map<std::string, entry> entries_;
  std::list<std::string> recency_;  // most recently used first
  std::unordered_map<std::string, fills_of_user> fills_;
  // Written with mutex_ held, so one writer at a time.
  dataloader::detail::single_writer_counter entries_count_, bytes_count_, hits_, misses_, invalidations_, resyncs_,
      stale_fills_;
  std::atomic<bool> serving_flag_{false};
};

}  // namespace dataloader::store::detail
