#include "user_cache.hpp"

#include <algorithm>

namespace dataloader::store::detail {

namespace {

std::size_t size_of(const std::optional<std::string>& s) { return s ? s->capacity() : 0; }

std::size_t size_of(const prefetch_result& r) {
  std::size_t n = sizeof(r) + r.user_id.capacity() + size_of(r.profile);
  for (const auto& m : r.recent_memories)
    n += sizeof(m) + m.user_id.capacity() + m.category.capacity() + m.key.capacity() + m.value.capacity();
  // A JSON tree takes several times its text; the text's length is a lower bound that
  // scales the same way.
  if (r.onboarding) n += r.onboarding->dump().size() * 2;
  return n;
}

}  // namespace

user_cache::user_cache(std::size_t capacity, std::chrono::milliseconds ttl) : capacity_(capacity), ttl_(ttl) {}

user_cache::ticket::~ticket() {
  if (cache_) cache_->release(*this);
}

std::optional<user_cache::found<user_cache::cached_snapshot>> user_cache::snapshot(const std::string& user, int limit,
                                                                                  pg::lsn at_least, bool count_miss) {
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  if (!serving_) return std::nullopt;
  auto it = entries_.find(user);
  if (it == entries_.end() || !fresh(it->second.snapshot, at_least, now) ||
      (it->second.snapshot_limit < limit &&
       it->second.snapshot->value->memory_count >
           static_cast<std::int64_t>(it->second.snapshot->value->recent_memories.size()))) {
    if (count_miss) misses_.add();
    return std::nullopt;
  }
  hits_.add();
  recency_.splice(recency_.begin(), recency_, it->second.recency);
  const entry& e = it->second;
  return found<cached_snapshot>{{e.snapshot->value, e.rendering}, e.snapshot->position};
}

void user_cache::keep_rendering(const std::string& user, const prefetch_result* data,
                                std::shared_ptr<const snapshot_rendering> rendering) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(user);
  if (it == entries_.end()) return;
  entry& e = it->second;
  if (!e.snapshot || e.snapshot->value.get() != data || e.rendering) return;
  e.rendering = std::move(rendering);
  account(e);
}

std::optional<user_cache::found<std::optional<std::string>>> user_cache::profile(const std::string& user,
                                                                                 pg::lsn at_least) {
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  if (!serving_) return std::nullopt;
  auto it = entries_.find(user);
  if (it != entries_.end()) {
    // Either part has the profile; the snapshot was read with it, in one statement.
    const entry& e = it->second;
    const auto* best = fresh(e.profile, at_least, now) ? &*e.profile : nullptr;
    if (fresh(e.snapshot, at_least, now) && (!best || e.snapshot->position > best->position)) {
      hits_.add();
      recency_.splice(recency_.begin(), recency_, it->second.recency);
      return found<std::optional<std::string>>{e.snapshot->value->profile, e.snapshot->position};
    }
    if (best) {
      hits_.add();
      recency_.splice(recency_.begin(), recency_, it->second.recency);
      return found<std::optional<std::string>>{best->value, best->position};
    }
  }
  misses_.add();
  return std::nullopt;
}

user_cache::ticket user_cache::take_ticket(std::string user) {
  std::lock_guard lock(mutex_);
  ticket t;
  if (!serving_) return t;
  ++fills_[user].in_flight;
  t.cache_ = this;
  t.user_ = std::move(user);
  t.taken_ = clock_;
  return t;
}

void user_cache::release(const ticket& t) {
  std::lock_guard lock(mutex_);
  auto it = fills_.find(t.user_);
  if (it != fills_.end() && --it->second.in_flight == 0) fills_.erase(it);
}

bool user_cache::keeps(const ticket& t) {
  if (!t.valid() || !serving_) return false;
  auto it = fills_.find(t.user_);
  if (dropped_all_at_ > t.taken_ || (it != fills_.end() && it->second.invalidated > t.taken_)) {
    stale_fills_.add();
    return false;
  }
  return true;
}

user_cache::entry& user_cache::entry_for(const std::string& user) {
  auto [it, inserted] = entries_.try_emplace(user);
  if (inserted) {
    recency_.push_front(user);
    it->second.recency = recency_.begin();
    entries_count_.set(entries_.size());
    while (entries_.size() > capacity_) erase(entries_.find(recency_.back()));
  } else {
    recency_.splice(recency_.begin(), recency_, it->second.recency);
  }
  return entries_.find(user)->second;
}

void user_cache::account(entry& e) {
  const std::size_t before = e.bytes;
  // The key is held twice: by the map and by the recency list.
  e.bytes = sizeof(entry) + 2 * e.recency->capacity() + sizeof(std::string) * 2;
  if (e.snapshot) e.bytes += size_of(*e.snapshot->value);
  if (e.rendering) e.bytes += e.rendering->bytes();
  if (e.profile) e.bytes += size_of(e.profile->value);
  bytes_count_.set(bytes_count_.get() - before + e.bytes);
}

void user_cache::put_snapshot(const ticket& t, int limit, const prefetch_result& value, pg::lsn position) {
  std::lock_guard lock(mutex_);
  if (!keeps(t)) return;
  entry& e = entry_for(t.user_);
  e.snapshot = part<std::shared_ptr<const prefetch_result>>{std::make_shared<const prefetch_result>(value), position,
                                                           clock::now()};
  e.snapshot_limit = limit;
  e.rendering.reset();
  account(e);
}

void user_cache::put_profile(const ticket& t, const std::optional<std::string>& value, pg::lsn position) {
  std::lock_guard lock(mutex_);
  if (!keeps(t)) return;
  entry& e = entry_for(t.user_);
  e.profile = part<std::optional<std::string>>{value, position, clock::now()};
  account(e);
}

void user_cache::erase(std::unordered_map<std::string, entry>::iterator it) {
  bytes_count_.set(bytes_count_.get() - it->second.bytes);
  recency_.erase(it->second.recency);
  entries_.erase(it);
  entries_count_.set(entries_.size());
}

void user_cache::invalidate(const std::string& user) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  invalidations_.add();
  ++clock_;
  if (auto f = fills_.find(user); f != fills_.end()) f->second.invalidated = clock_;
  if (auto it = entries_.find(user); it != entries_.end()) erase(it);
}

void user_cache::drop_everything() {
  ++clock_;
  dropped_all_at_ = clock_;
  entries_.clear();
  recency_.clear();
  entries_count_.set(0);
  bytes_count_.set(0);
}

void user_cache::suspend() {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  if (serving_) resyncs_.add();
  serving_ = false;
  serving_flag_.store(false, std::memory_order_relaxed);
  drop_everything();
}

void user_cache::resume() {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  drop_everything();
  serving_ = true;
  serving_flag_.store(true, std::memory_order_relaxed);
}

void user_cache::invalidate_all() {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  resyncs_.add();
  drop_everything();
}

cache_stats user_cache::stats() const {
  cache_stats s;
  s.enabled = enabled();
  s.serving = serving_flag_.load(std::memory_order_relaxed);
  s.entries = entries_count_.get();
  s.bytes = bytes_count_.get();
  s.hits = hits_.get();
  s.misses = misses_.get();
  s.invalidations = invalidations_.get();
  s.resyncs = resyncs_.get();
  s.notifications = notifications.get();
  s.stale_fills = stale_fills_.get();
  return s;
}

}  // namespace dataloader::store::detail
