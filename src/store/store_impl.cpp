#include "store_impl.hpp"

#include "invalidation.hpp"
#include "sql.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace dataloader::store::detail {

namespace {

const pg::statement probe_replica{"store_probe_replica",
    "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn(), '0/0')::text"};
const pg::statement probe_primary{"store_probe_primary", "SELECT pg_current_wal_flush_lsn()::text"};

std::optional<pg::lsn> position_in(const pg::result& r, std::size_t col) {
  auto text = r.get<std::string>(0, col);
  return text ? pg::parse_lsn(*text) : std::nullopt;
}

}  // namespace

store_impl::store_impl(pg::connection_pool& p, std::span<pg::connection_pool* const> replicas, store_options opts,
                       loader_registry* reg)
    : pool(p),
      options(opts),
      registry(reg),
      saves(writer<save_request, std::int64_t>(
          "save_memories",
          [this](std::span<const save_request* const> rs) {
            return chunked_upserts(merge_last_wins(rs), options.max_batch_size);
          },
          [](std::span<const save_request* const> rs, const std::vector<pg::result>&) { return rows_written(rs); })),
      profile_puts(writer<put_request, bool>(
          "put_profile", [](std::span<const put_request* const> rs) { return last_put_per_user(sql::put_profiles, rs); },
          [](std::span<const put_request* const> rs, const std::vector<pg::result>&) {
            return std::vector<bool>(rs.size(), true);
          })),
      onboarding_puts(writer<put_request, bool>(
          "put_onboarding",
          [](std::span<const put_request* const> rs) { return last_put_per_user(sql::put_onboarding, rs); },
          [](std::span<const put_request* const> rs, const std::vector<pg::result>&) {
            return std::vector<bool>(rs.size(), true);
          })),
      deletes(writer<delete_request, std::int64_t>(
          "delete_memories",
          [this](std::span<const delete_request* const> rs) { return batched_deletes(rs, options.max_batch_size); },
          rows_deleted)),
      primary_position(p.get_executor(),
                       [this](std::span<const int> keys) -> asio::awaitable<std::vector<result<pg::lsn>>> {
                         auto o = co_await primary_host().query(sql::primary_position, {});
                         if (o.ec) co_return fail_all<pg::lsn>(keys.size(), failure_of(o.ec, o.diag));
                         auto now = position_in(o.result, 0);
                         if (!now)
                           co_return fail_all<pg::lsn>(
                               keys.size(), failure{errc::protocol_error, "pg_current_wal_insert_lsn() gave no position"});
                         observe(*now);
                         co_return std::vector<result<pg::lsn>>(keys.size(), result<pg::lsn>(*now));
                       },
                       loader_opts("primary_position", p)),
      cache(opts.cache_entries, opts.cache_ttl) {
  hosts.push_back(std::make_unique<read_host>(*this, p, true));
  for (auto* r : replicas) hosts.push_back(std::make_unique<read_host>(*this, *r, false));
}

loader_options store_impl::loader_opts(const char* name, pg::connection_pool& for_pool) const {
  loader_options o;
  o.name = name;
  o.registry = registry;
  o.max_batch_size = options.max_batch_size;
  o.batch_window = options.batch_window;
  o.cache = cache_mode::off;  // long-lived loaders in front of data that changes
  if (options.smart_batching) {
    // The loaders run on the store's strand, the pool on its own: saturated() and
    // when_unsaturated() are the primary's strand calls, so only the primary's loaders
    // hold (a replica's pool is asked from the wrong strand otherwise).
    if (&for_pool == &pool) {
      o.hold = [p = &pool](std::function<void()> go) {
        if (!p->saturated()) return false;
        p->when_unsaturated(std::move(go));
        return true;
      };
    }
  }
  return o;
}

template <class Request, class Response>
coalesced_writer<Request, Response> store_impl::writer(const char* name,
                                                       typename coalesced_writer<Request, Response>::build_fn build,
                                                       typename coalesced_writer<Request, Response>::answer_fn answer) {
  return coalesced_writer<Request, Response>(
      pool.get_executor(), loader_opts(name, pool),
      [this](std::vector<pg::query> qs) { return group(std::move(qs), false); }, std::move(build), std::move(answer),
      retried_statements);
}

asio::awaitable<query_outcome> store_impl::query(const pg::statement& st, pg::params args, bool read) {
  if (read) co_return co_await primary_host().query(st, std::move(args));
  // A write's position is read after its commit (see group()).
  std::vector<pg::query> qs;
  qs.push_back(pg::query{&st, std::move(args)});
  auto g = co_await group(std::move(qs), false);
  query_outcome out;
  out.ec = g.ec;
  out.diag = std::move(g.diag);
  if (!g.results.empty()) out.result = std::move(g.results.front());
  co_return out;
}

asio::awaitable<group_outcome> store_impl::group(std::vector<pg::query> qs, bool read) {
  if (read) co_return co_await primary_host().group(std::move(qs));
  queries.add(qs.size() + write_overhead);
  pg::query_options o;
  o.position_after_commit = true;  // never resent: a write may have committed
  group_outcome out;
  auto [ec, rs] = co_await pool.async_pipeline(std::move(qs), o, out.diag, asio::as_tuple(asio::use_awaitable));
  out.ec = ec;
  out.results = std::move(rs);
  if (!ec) {
    // The position is the store's, not the caller's result.
    if (auto p = position_in(out.results.back(), 0)) observe(*p);
    out.results.pop_back();
  }
  co_return out;
}

read_host* store_impl::pick_replica(pg::lsn at_least) {
  // Round robin over the replicas that can serve the read, starting after the last pick.
  const std::size_t n = hosts.size() - 1;
  for (std::size_t i = 0; i < n; ++i) {
    read_host& h = *hosts[1 + (next_replica_ + i) % n];
    if (h.usable(options.max_replica_lag) && h.replayed() >= at_least) {
      next_replica_ = (next_replica_ + i + 1) % n;
      return &h;
    }
  }
  return nullptr;
}

asio::awaitable<result<read_plan>> store_impl::begin_read(const consistency* c, std::span<const std::string> users) {
  const pg::lsn asked = c != nullptr ? c->min_position : pg::lsn{};
  if (asked > observed) {
    naive_queries.add(1);  // one check per read without batching
    // Not a batch from before this read arrived: that one may not have reached it yet.
    primary_position.clear(0);
    diagnostics d;
    auto [ec, now] = co_await primary_position.async_load(0, d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return failure_of(ec, d);
    if (asked > now)
      co_return failure{errc::invalid_argument, "min_position: " + pg::to_string(asked) +
                                                    " is beyond the primary's current position " + pg::to_string(now) +
                                                    " (a position from another database?)"};
  }
  // What this instance wrote of these users and a replica may not have replayed yet.
  pg::lsn own = untracked_floor;
  for (const auto& u : users)
    if (auto it = written_at.find(u); it != written_at.end()) own = std::max(own, it->second);
  if (everyone_awaiting_position > 0 || std::any_of(users.begin(), users.end(), [&](const std::string& u) {
        return awaiting_position.contains(u);
      }))
    own = pg::lsn{UINT64_MAX};  // changed by another client, at a position not known yet
  read_plan plan;
  if (hosts.size() > 1) {
    plan.host = pick_replica(std::max(asked, own));
    const bool replica_usable = std::any_of(hosts.begin() + 1, hosts.end(),
                                            [&](const auto& h) { return h->usable(options.max_replica_lag); });
    if (plan.host == nullptr && replica_usable) reads_held_to_primary.add();
  }
  if (plan.host == nullptr) plan.host = &primary_host();  // the primary has every acknowledged write
  plan.host->reads.add();
  plan.position = plan.host->claim_floor();
  plan.fresh = asked > plan.position;
  plan.position = std::max(plan.position, asked);
  co_return plan;
}

void store_impl::end_write(consistency* c, std::span<const std::string> users) {
  invalidate(users);
  track_written(users, observed);
  if (c != nullptr) c->position = observed;
}

void store_impl::invalidate(std::span<const std::string> users) {
  ++reads_epoch;
  for (const auto& u : users) {
    cache.invalidate(u);
    for (auto& h : hosts) h->forget_user(u, limits_seen);
  }
}

void store_impl::forget_everything_in_flight() {
  ++reads_epoch;
  for (auto& h : hosts) {
    h->profiles.clear_all();
    h->onboarding.clear_all();
    h->snapshots.clear_all();
  }
}

void store_impl::track_written(std::span<const std::string> users, pg::lsn at) {
  if (hosts.size() < 2) return;
  if (written_at.size() + users.size() > options.max_tracked_writes) {
    for (const auto& [user, position] : written_at) untracked_floor = std::max(untracked_floor, position);
    written_at.clear();
  }
  for (const auto& u : users) {
    auto& position = written_at[u];
    position = std::max(position, at);
  }
}

void store_impl::on_notification(const pg::notification& n) {
  cache.notifications.add();
  auto changed = parse_invalidation(n.payload);
  if (changed.all) {
    cache.invalidate_all();
    forget_everything_in_flight();
  } else {
    invalidate(changed.users);
  }
  if (hosts.size() < 2) return;
  if (changed.all) {
    ++everyone_awaiting_position;
    position_after_notification(nullptr, nullptr);
  } else {
    for (const auto& u : changed.users) ++awaiting_position[u];
    position_after_notification(std::make_shared<std::vector<std::string>>(std::move(changed.users)), nullptr);
  }
}

void store_impl::on_listening() {
  // Whatever was read before now may predate a notification lost in the gap: nothing read
  // or in flight before now is kept (fills taken before were voided by the suspension).
  forget_everything_in_flight();
  if (hosts.size() < 2) return cache.resume();
  // A replica may not have replayed a change whose notification was lost.
  ++everyone_awaiting_position;
  position_after_notification(nullptr, [this] { cache.resume(); });
}

void store_impl::position_after_notification(std::shared_ptr<std::vector<std::string>> users,
                                             std::function<void()> then) {
  asio::co_spawn(pool.get_executor(), [weak = weak_from_this(), users, then]() -> asio::awaitable<void> {
    asio::steady_timer retry(co_await asio::this_coro::executor);
    for (;;) {
      auto self = weak.lock();
      if (!self) co_return;
      // A check sent now, after the notification arrived, so after the change committed.
      self->primary_position.clear(0);
      diagnostics d;
      auto [ec, now] = co_await self->primary_position.async_load(0, d, asio::as_tuple(asio::use_awaitable));
      if (!ec) {
        if (users) {
          self->track_written(*users, now);
          for (const auto& u : *users)
            if (auto it = self->awaiting_position.find(u); it != self->awaiting_position.end() && --it->second == 0)
              self->awaiting_position.erase(it);
        } else {
          self->untracked_floor = std::max(self->untracked_floor, now);
          --self->everyone_awaiting_position;
        }
        if (then) then();
        co_return;
      }
      // The primary does not answer: its users' reads go to it (and fail) meanwhile.
      retry.expires_after(self->options.replica_probe_interval);
      self.reset();
      co_await retry.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }, asio::detached);
}

void store_impl::start_background() {
  if (cache.enabled()) {
    pg::listener_params lp;
    lp.conninfo = pool.config().conninfo;
    lp.channels = {"dataloader_invalidate"};
    lp.connect_timeout = pool.config().connect_timeout;
    lp.retry_interval = pool.config().retry_interval;
    lp.max_retry_interval = pool.config().max_retry_interval;
    lp.heartbeat_interval = options.cache_heartbeat;
    pg::listener_events events;
    events.listening = [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->on_listening();
    };
    events.notified = [weak = weak_from_this()](const pg::notification& n) {
      if (auto self = weak.lock()) self->on_notification(n);
    };
    events.lost = [weak = weak_from_this()](const std::string&) {
      if (auto self = weak.lock()) self->cache.suspend();
    };
    listener = std::make_unique<pg::listener>(pool.get_executor(), std::move(lp), std::move(events));
    listener->start();
  }
  if (hosts.size() < 2) return;
  asio::co_spawn(pool.get_executor(), [weak = weak_from_this()]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
      auto self = weak.lock();
      if (!self) co_return;
      co_await self->probe_replicas();
      timer.expires_after(self->options.replica_probe_interval);
      self.reset();  // the store may go while this waits
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }, asio::detached);
}

asio::awaitable<void> store_impl::probe_replicas() {
  using clock = std::chrono::steady_clock;
  // Probes are not store statements (not counted in queries); short deadlines, no resend.
  pg::query_options o;
  o.timeout = std::max(options.replica_probe_interval * 4, std::chrono::milliseconds(200));
  diagnostics d;
  auto [pe, pr] = co_await pool.async_query(probe_primary, {}, o, d, asio::as_tuple(asio::use_awaitable));
  const auto now = clock::now();
  if (!pe)
    if (auto flushed = position_in(pr, 0)) {
      if (primary_history_.empty() || primary_history_.back().second < *flushed)
        primary_history_.emplace_back(now, *flushed);
      // Keep what a lag up to twice the limit needs, and always the newest sample.
      while (primary_history_.size() > 1 && now - primary_history_.front().first > 2 * options.max_replica_lag &&
             primary_history_[1].first < now - 2 * options.max_replica_lag)
        primary_history_.pop_front();
    }
  for (std::size_t i = 1; i < hosts.size(); ++i) {
    read_host& h = *hosts[i];
    auto [ec, r] = co_await h.pool.async_query(probe_replica, {}, o, d, asio::as_tuple(asio::use_awaitable));
    h.state.connected.store(!ec, std::memory_order_relaxed);
    if (ec) continue;
    h.state.in_recovery.store(r.get<bool>(0, 0).value_or(false), std::memory_order_relaxed);
    const pg::lsn replayed = position_in(r, 1).value_or(pg::lsn{});
    h.state.replayed.store(replayed.value, std::memory_order_relaxed);
    // Lag: how long ago the primary first stood past what the replica has replayed.
    std::int64_t lag_ms = 0;
    for (const auto& [at, flushed] : primary_history_)
      if (flushed > replayed) {
        lag_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - at).count();
        break;
      }
    h.state.lag_ms.store(lag_ms, std::memory_order_relaxed);
  }
  // Positions every usable replica has replayed need no tracking any more.
  pg::lsn everywhere{UINT64_MAX};
  for (std::size_t i = 1; i < hosts.size(); ++i) everywhere = std::min(everywhere, hosts[i]->replayed());
  std::erase_if(written_at, [&](const auto& entry) { return entry.second <= everywhere; });
  if (untracked_floor <= everywhere) untracked_floor = pg::lsn{};
}

}  // namespace dataloader::store::detail
