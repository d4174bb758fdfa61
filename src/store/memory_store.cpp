// The store's operations: validate (SPEC.md limits, naming the field), count, then take
// the batched path (loaders and coalesced writers) or, with coalesce off, the N+1
// baseline. A write is acknowledged after it commits and after the loaders have forgotten
// its users, so a read that starts after the acknowledgement never joins an older batch.
#include "dataloader/store/memory_store.hpp"

#include "batch_reads.hpp"
#include "naive.hpp"
#include "page_cursor.hpp"
#include "rows.hpp"
#include "sql.hpp"
#include "store_impl.hpp"
#include "validation.hpp"

#include "dataloader/json.hpp"

#include <algorithm>
#include <set>
#include <type_traits>

namespace dataloader::store {

memory_store::memory_store(pg::connection_pool& pool, store_options options, loader_registry* registry)
    : memory_store(pool, {}, options, registry) {}

memory_store::memory_store(pg::connection_pool& primary, std::span<pg::connection_pool* const> replicas,
                           store_options options, loader_registry* registry)
    : impl_(std::make_shared<detail::store_impl>(primary, replicas, options, registry)) {
  impl_->start_background();
}

memory_store::~memory_store() = default;

memory_store::executor_type memory_store::get_executor() const noexcept { return impl_->pool.get_executor(); }
const store_options& memory_store::options() const noexcept { return impl_->options; }

store_stats memory_store::stats() const {
  store_stats s;
  s.total_operations = impl_->total_operations.get();
  s.queries = impl_->queries.get();
  s.naive_queries = impl_->naive_queries.get();
  s.retried_statements = impl_->retried_statements.get();
  s.reads_held_to_primary = impl_->reads_held_to_primary.get();
  for (const auto& h : impl_->hosts) {
    s.loads += h->profiles.stats().loads + h->onboarding.stats().loads + h->snapshots.stats().loads;
    host_stats hs;
    const bool connected = h->state.connected.load(std::memory_order_relaxed);
    const bool standby = h->state.in_recovery.load(std::memory_order_relaxed);
    // A replica URL whose server is not in recovery (promoted, or a primary by mistake) is
    // a primary: reported as one, and not read from.
    hs.role = h->primary || (connected && !standby) ? "primary" : "replica";
    hs.connected = h->primary ? h->pool.healthy() : connected;
    hs.lag_ms = h->state.lag_ms.load(std::memory_order_relaxed);
    hs.replayed = h->replayed();
    auto ps = h->pool.stats();
    hs.statements = ps.statements;
    for (const auto& [name, n] : ps.slow_statements) s.slow_statements[name] += n;
    hs.reads = h->reads.get();
    s.hosts.push_back(std::move(hs));
  }
  if (impl_->registry) s.loaders = impl_->registry->snapshot();
  s.cache = impl_->cache.stats();
  return s;
}

namespace {

template <class T>
result<T> invalid(std::string message) {
  return failure{errc::invalid_argument, std::move(message)};
}

// A validated profile or onboarding state: its own upsert (coalesce off) or the kind's
// coalesced writer; once written, the user's reads in flight are forgotten.
asio::awaitable<result<bool>> put_one(detail::store_impl& s, const pg::statement& upsert,
                                      detail::coalesced_writer<detail::put_request, bool>& writer,
                                      std::string user_id, std::string value) {
  s.naive_queries.add(1 + detail::store_impl::write_overhead);
  // GCC 12 miscompiles temporaries inside co_await expressions (README): named values,
  // one co_await per statement.
  result<bool> done = true;
  if (s.options.coalesce) {
    detail::put_request request{user_id, std::move(value)};
    done = co_await writer.submit(std::move(request));
  } else {
    done = co_await detail::naive::put(s, upsert, user_id, value);
  }
  co_return done;
}

asio::awaitable<result<prefetch_result>> load_snapshot(detail::store_impl& s, const detail::read_plan& plan,
                                                       std::string user_id, int limit) {
  s.limits_seen.insert(limit);
  diagnostics d;
  detail::snapshot_key key{std::move(user_id), limit};
  auto& snapshots = plan.host->snapshots;
  if (plan.fresh) snapshots.clear(key);
  auto [ec, v] = co_await snapshots.async_load(std::move(key), d, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return detail::failure_of(ec, d);
  co_return std::move(v);
}

// What one prefetch would send without batching: profile, onboarding, recent memories, count.
constexpr std::uint64_t naive_prefetch_statements = 4;

// A prefetch with `limit` answered from a cached snapshot (which may hold more memories).
cached_prefetch answer_from(detail::user_cache::cached_snapshot snapshot, int limit) {
  const auto n = std::min(snapshot.data->recent_memories.size(), static_cast<std::size_t>(limit));
  return cached_prefetch{std::move(snapshot.data), n, std::move(snapshot.rendering)};
}

// That answer as async_prefetch completes with: a copy of its own.
prefetch_result copy_of(const cached_prefetch& hit) {
  const prefetch_result& cached = *hit.snapshot;
  const auto recent = hit.recent_memories();
  return prefetch_result{cached.user_id, cached.profile, {recent.begin(), recent.end()}, cached.onboarding,
                         cached.memory_count};
}

// A read's answer, and its position once it succeeded.
template <class T>
result<T> positioned(result<T> r, const detail::read_plan& plan, consistency* c) {
  if (r && c) c->position = plan.position;
  return r;
}

// The batched snapshot read: from the cache when it holds the user (at the position the
// caller needs), else through the host's loader, kept in the cache for later reads. A
// read for the cache takes every memory up to the largest limit asked so far, so that
// one entry serves every limit.
asio::awaitable<result<prefetch_result>> snapshot_of(detail::store_impl& s, consistency* c, std::string user_id,
                                                     int limit) {
  const pg::lsn asked = c != nullptr ? c->min_position : pg::lsn{};
  if (auto hit = s.cache.snapshot(user_id, limit, asked)) {
    if (c) c->position = hit->position;
    co_return copy_of(answer_from(std::move(hit->value), limit));
  }
  auto ticket = s.cache.take_ticket(user_id);
  const std::span<const std::string> reader(&user_id, 1);
  auto plan = co_await s.begin_read(c, reader);
  if (!plan) co_return plan.get_failure();
  const int read_limit = ticket.valid() && !s.limits_seen.empty() ? std::max(limit, *s.limits_seen.rbegin()) : limit;
  auto found = co_await load_snapshot(s, *plan, std::move(user_id), read_limit);
  if (found && ticket.valid()) {
    s.cache.put_snapshot(ticket, read_limit, *found, plan->position);
    auto& recent = (*found).recent_memories;
    if (recent.size() > static_cast<std::size_t>(limit)) recent.resize(limit);
  }
  co_return positioned(std::move(found), *plan, c);
}

// Profiles and onboarding states are looked up alike: validated ids, then the kind's
// loader (or one statement per id). Profiles come from the cache when it holds them;
// only the ids it does not hold are read (and then kept).
template <class V, class Naive>
asio::awaitable<result<std::vector<std::optional<V>>>> lookup_by_ids(
    detail::store_impl& s, std::vector<std::string> ids, Naive naive,
    loader<std::string, std::optional<V>> detail::read_host::*loader_of, consistency* c) {
  using T = std::vector<std::optional<V>>;
  constexpr bool cached = std::is_same_v<V, std::string>;
  s.total_operations.add();
  if (auto p = detail::check_names("ids", ids); !p.empty()) co_return invalid<T>(p);
  s.naive_queries.add(ids.size());
  if (!s.options.coalesce) {
    auto plan = co_await s.begin_read(c, ids);
    if (!plan) co_return plan.get_failure();
    auto found = co_await naive(*plan->host, std::move(ids));
    co_return positioned(std::move(found), *plan, c);
  }
  T values(ids.size());
  std::vector<std::size_t> wanted;  // positions in `ids` to read
  std::vector<detail::user_cache::ticket> tickets;
  pg::lsn position{UINT64_MAX};
  const pg::lsn asked = c != nullptr ? c->min_position : pg::lsn{};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if constexpr (cached) {
      if (auto hit = s.cache.profile(ids[i], asked)) {
        values[i] = std::move(hit->value);
        position = std::min(position, hit->position);
        continue;
      }
      tickets.push_back(s.cache.take_ticket(ids[i]));
    }
    wanted.push_back(i);
  }
  if (!wanted.empty() || ids.empty()) {  // no ids: still a read, with a position
    std::vector<std::string> reading;
    reading.reserve(wanted.size());
    for (auto i : wanted) reading.push_back(ids[i]);
    auto plan = co_await s.begin_read(c, reading);
    if (!plan) co_return plan.get_failure();
    auto& by_id = plan->host->*loader_of;
    if (plan->fresh)
      for (const auto& id : reading) by_id.clear(id);
    auto results = co_await by_id.load_many(std::move(reading));
    for (std::size_t j = 0; j < results.size(); ++j) {
      if (!results[j]) co_return results[j].get_failure();
      if constexpr (cached) s.cache.put_profile(tickets[j], *results[j], plan->position);
      values[wanted[j]] = std::move(*results[j]);
    }
    position = std::min(position, plan->position);
  }
  if (c) c->position = position;
  co_return values;
}

}  // namespace

asio::awaitable<result<prefetch_result>> memory_store::prefetch(std::string user_id, int memory_limit,
                                                                consistency* c) {
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_name("user_id", user_id); !p.empty()) co_return invalid<prefetch_result>(p);
  if (auto p = detail::check_range("memory_limit", memory_limit, 1, max_memory_limit); !p.empty())
    co_return invalid<prefetch_result>(p);
  s.naive_queries.add(naive_prefetch_statements);
  if (s.options.coalesce) co_return co_await snapshot_of(s, c, std::move(user_id), memory_limit);
  const std::span<const std::string> reader(&user_id, 1);
  auto plan = co_await s.begin_read(c, reader);
  if (!plan) co_return plan.get_failure();
  auto found = co_await detail::naive::prefetch(*plan->host, std::move(user_id), memory_limit);
  co_return positioned(std::move(found), *plan, c);
}

std::optional<cached_prefetch> memory_store::try_cached_prefetch(const std::string& user_id, int memory_limit,
                                                                consistency& position) {
  auto& s = *impl_;
  // Without coalescing the store reads around the cache (the N+1 baseline).
  if (!s.cache.enabled() || !s.options.coalesce ||
      !detail::check_range("memory_limit", memory_limit, 1, max_memory_limit).empty())
    return std::nullopt;
  // A miss is counted by async_prefetch, which the caller asks next.
  auto hit = s.cache.snapshot(user_id, memory_limit, position.min_position, detail::user_cache::uncounted_miss);
  if (!hit) return std::nullopt;
  s.total_operations.add();
  s.naive_queries.add(naive_prefetch_statements);
  position.position = hit->position;
  return answer_from(std::move(hit->value), memory_limit);
}

void memory_store::keep_rendering(const std::string& user_id, const cached_prefetch& hit,
                                  std::shared_ptr<const snapshot_rendering> rendering) {
  impl_->cache.keep_rendering(user_id, hit.snapshot.get(), std::move(rendering));
}

asio::awaitable<result<std::vector<std::optional<std::string>>>> memory_store::get_profiles(std::vector<std::string> ids,
                                                                                           consistency* c) {
  return lookup_by_ids<std::string>(*impl_, std::move(ids), detail::naive::profiles, &detail::read_host::profiles, c);
}

asio::awaitable<result<std::vector<std::optional<nlohmann::json>>>> memory_store::get_onboarding(
    std::vector<std::string> ids, consistency* c) {
  return lookup_by_ids<nlohmann::json>(*impl_, std::move(ids), detail::naive::onboarding,
                                       &detail::read_host::onboarding, c);
}

asio::awaitable<result<recent_memories>> memory_store::get_recent_memories(std::string user_id, int limit,
                                                                           consistency* c) {
  using T = store::recent_memories;
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_name("user_id", user_id); !p.empty()) co_return invalid<T>(p);
  if (auto p = detail::check_range("limit", limit, 1, max_memory_limit); !p.empty()) co_return invalid<T>(p);
  s.naive_queries.add(2);
  if (s.options.coalesce) {
    auto snapshot = co_await snapshot_of(s, c, std::move(user_id), limit);
    if (!snapshot) co_return snapshot.get_failure();
    co_return T{std::move(snapshot->recent_memories), snapshot->memory_count};
  }
  const std::span<const std::string> reader(&user_id, 1);
  auto plan = co_await s.begin_read(c, reader);
  if (!plan) co_return plan.get_failure();
  auto found = co_await detail::naive::recent(*plan->host, std::move(user_id), limit);
  co_return positioned(std::move(found), *plan, c);
}

asio::awaitable<result<memory_page>> memory_store::get_memories(std::string user_id, memory_filter filter,
                                                                consistency* c) {
  using T = memory_page;
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_name("user_id", user_id); !p.empty()) co_return invalid<T>(p);
  if (filter.category)
    if (auto p = detail::check_name("category", *filter.category); !p.empty()) co_return invalid<T>(p);
  if (filter.keys)
    if (auto p = detail::check_names("keys", *filter.keys); !p.empty()) co_return invalid<T>(p);
  if (auto p = detail::check_range("limit", filter.limit, 1, max_list_limit); !p.empty()) co_return invalid<T>(p);
  detail::page_key key;
  key.user_id = user_id;
  key.category = filter.category.value_or("");
  key.keys = filter.keys;
  if (filter.after) {
    auto after = detail::decode_cursor(*filter.after, user_id, filter);
    if (!after) co_return after.get_failure();
    key.after_updated_at = after->updated_at;
    key.after_category = std::move((*after).category);
    key.after_key = std::move((*after).key);
  }
  key.rows = filter.limit + 1;  // one more than the page: whether anything follows
  key.epoch = s.reads_epoch;
  const std::span<const std::string> reader(&user_id, 1);
  auto plan = co_await s.begin_read(c, reader);
  if (!plan) co_return plan.get_failure();
  s.naive_queries.add(1);
  result<std::vector<memory>> rows = std::vector<memory>{};
  if (s.options.coalesce) {
    auto& pages = plan->host->pages;
    if (plan->fresh) pages.clear(key);
    diagnostics d;
    auto [ec, found] = co_await pages.async_load(std::move(key), d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return detail::failure_of(ec, d);
    rows = std::move(found);
  } else {
    auto one = co_await detail::read_pages(*plan->host, std::span<const detail::page_key>(&key, 1));
    rows = std::move(one.front());
  }
  if (!rows) co_return rows.get_failure();
  memory_page page{std::move(*rows), std::nullopt};
  if (page.memories.size() > static_cast<std::size_t>(filter.limit)) {
    page.memories.resize(filter.limit);
    const memory& last = page.memories.back();
    page.next = detail::encode_cursor({last.updated_at, last.category, last.key}, user_id, filter);
  }
  co_return positioned(result<T>(std::move(page)), *plan, c);
}

asio::awaitable<result<std::int64_t>> memory_store::save_memories(std::vector<memory_input> items, consistency* c) {
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_items(items); !p.empty()) co_return invalid<std::int64_t>(p);
  if (items.empty()) {
    s.end_write(c, {});  // nothing written: every position already acknowledged covers it
    co_return std::int64_t{0};
  }
  s.naive_queries.add(items.size() + detail::store_impl::write_overhead);
  std::set<std::string> distinct;
  for (const auto& m : items) distinct.insert(m.user_id);
  const std::vector<std::string> users(distinct.begin(), distinct.end());
  result<std::int64_t> written = std::int64_t{0};
  if (s.options.coalesce) {
    detail::save_request request{std::move(items)};
    written = co_await s.saves.submit(std::move(request));
  } else {
    written = co_await detail::naive::save(s, std::move(items));
  }
  if (written) s.end_write(c, users);
  co_return written;
}

asio::awaitable<result<std::int64_t>> memory_store::delete_memories(std::string user_id, std::vector<std::string> keys,
                                                                    std::optional<std::string> category, consistency* c) {
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_name("user_id", user_id); !p.empty()) co_return invalid<std::int64_t>(p);
  if (category)
    if (auto p = detail::check_name("category", *category); !p.empty()) co_return invalid<std::int64_t>(p);
  if (auto p = detail::check_names("keys", keys); !p.empty()) co_return invalid<std::int64_t>(p);
  if (keys.empty()) {
    s.end_write(c, {});
    co_return std::int64_t{0};
  }
  s.naive_queries.add(keys.size() + detail::store_impl::write_overhead);
  result<std::int64_t> deleted = std::int64_t{0};
  if (s.options.coalesce) {
    detail::delete_request request{user_id, std::move(keys), category.value_or("")};
    deleted = co_await s.deletes.submit(std::move(request));
  } else {
    deleted = co_await detail::naive::remove(s, user_id, keys, category.value_or(""));
  }
  if (deleted) s.end_write(c, {&user_id, 1});
  co_return deleted;
}

asio::awaitable<result<search_results>> memory_store::search(std::string user_id, std::vector<std::string> categories,
                                                             int limit_per_category, consistency* c) {
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_name("user_id", user_id); !p.empty()) co_return invalid<search_results>(p);
  if (auto p = detail::check_names("categories", categories); !p.empty()) co_return invalid<search_results>(p);
  if (auto p = detail::check_range("limit_per_category", limit_per_category, 1, max_memory_limit); !p.empty())
    co_return invalid<search_results>(p);
  const std::span<const std::string> reader(&user_id, 1);
  auto plan = co_await s.begin_read(c, reader);
  if (!plan) co_return plan.get_failure();
  s.naive_queries.add(categories.size());
  search_results out;
  for (const auto& category : categories) out[category];  // every asked category appears, maybe empty
  if (categories.empty()) co_return positioned(result<search_results>(std::move(out)), *plan, c);
  if (!s.options.coalesce) {
    auto found = co_await detail::naive::search(*plan->host, user_id, categories, limit_per_category);
    co_return positioned(std::move(found), *plan, c);
  }
  auto o = co_await plan->host->query(detail::sql::search, pg::params(user_id, categories, limit_per_category));
  if (o.ec) co_return detail::failure_of(o.ec, o.diag);
  detail::add_search_rows(out, o.result, user_id);
  co_return positioned(result<search_results>(std::move(out)), *plan, c);
}

asio::awaitable<result<bool>> memory_store::put_profile(std::string user_id, std::string profile, consistency* c) {
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_name("user_id", user_id); !p.empty()) co_return invalid<bool>(p);
  if (auto p = detail::check_text("profile", profile); !p.empty()) co_return invalid<bool>(p);
  auto done = co_await put_one(s, detail::sql::put_profiles, s.profile_puts, user_id, std::move(profile));
  if (done) s.end_write(c, {&user_id, 1});
  co_return done;
}

asio::awaitable<result<bool>> memory_store::put_onboarding(std::string user_id, nlohmann::json state, consistency* c) {
  auto& s = *impl_;
  s.total_operations.add();
  if (auto p = detail::check_name("user_id", user_id); !p.empty()) co_return invalid<bool>(p);
  if (!json_depth_within(state))  // before dump(), which recurses once per level
    co_return invalid<bool>("state: nested deeper than " + std::to_string(max_json_depth) + " levels");
  std::string text;
  try {
    text = state.dump();
  } catch (const nlohmann::json::exception& e) {
    co_return invalid<bool>(std::string("state: ") + e.what());
  }
  if (auto p = detail::check_text("state", text); !p.empty()) co_return invalid<bool>(p);
  auto done = co_await put_one(s, detail::sql::put_onboarding, s.onboarding_puts, user_id, std::move(text));
  if (done) s.end_write(c, {&user_id, 1});
  co_return done;
}

}  // namespace dataloader::store
