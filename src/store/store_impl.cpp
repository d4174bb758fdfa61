#include "store_impl.hpp"

#include "batch_reads.hpp"
#include "sql.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace dataloader::store::detail {

store_impl::store_impl(pg::connection_pool& p, store_options opts, loader_registry* reg)
    : pool(p),
      options(opts),
      registry(reg),
      profiles(p.get_executor(), [this](std::span<const std::string> ids) { return read_profiles(*this, ids); },
               loader_opts("profiles")),
      onboarding(p.get_executor(), [this](std::span<const std::string> ids) { return read_onboarding(*this, ids); },
                 loader_opts("onboarding")),
      snapshots(p.get_executor(), [this](std::span<const snapshot_key> keys) { return read_snapshots(*this, keys); },
                loader_opts("user_snapshots")),

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
                         auto o = co_await query(sql::primary_position, {}, true);
                         if (o.ec) co_return fail_all<pg::lsn>(keys.size(), failure_of(o.ec, o.diag));
                         auto text = o.result.get<std::string>(0, 0);
                         auto now = text ? pg::parse_lsn(*text) : std::nullopt;
                         if (!now) co_return fail_all<pg::lsn>(keys.size(), failure{errc::protocol_error, "pg_current_wal_insert_lsn() gave no position"});
                         observe(*now);
                         co_return std::vector<result<pg::lsn>>(keys.size(), result<pg::lsn>(*now));
                       },
                       loader_opts("primary_position")) {}

loader_options store_impl::loader_opts(const char* name) const {
  loader_options o;
  o.name = name;
  o.registry = registry;
  o.max_batch_size = options.max_batch_size;
  o.batch_window = options.batch_window;
  o.cache = cache_mode::off;  // long-lived loaders in front of data that changes
  if (options.smart_batching) {
    // Loaders and pool share the pool's strand, where both calls must run.
    o.hold = [p = &pool](std::function<void()> go) {
      if (!p->saturated()) return false;
      p->when_unsaturated(std::move(go));
      return true;
    };
  }
  return o;
}

template <class Request, class Response>
coalesced_writer<Request, Response> store_impl::writer(const char* name,
                                                       typename coalesced_writer<Request, Response>::build_fn build,
                                                       typename coalesced_writer<Request, Response>::answer_fn answer) {
  return coalesced_writer<Request, Response>(
      pool.get_executor(), loader_opts(name),
      [this](std::vector<pg::query> qs) { return group(std::move(qs), false); }, std::move(build), std::move(answer),
      retried_statements);
}

asio::awaitable<query_outcome> store_impl::query(const pg::statement& st, pg::params args, bool read) {
  query_outcome out;
  if (!read) {  // a write commits inside its group (see group())
    std::vector<pg::query> qs;
    qs.push_back(pg::query{&st, std::move(args)});
    auto g = co_await group(std::move(qs), false);
    out.ec = g.ec;
    out.diag = std::move(g.diag);
    if (!g.results.empty()) out.result = std::move(g.results.front());
    co_return out;
  }
  queries.add();
  pg::query_options o;
  o.retry_on_connection_loss = true;
  const auto claim = reads_in_flight.insert(claim_now());
  auto [ec, r] = co_await pool.async_query(st, std::move(args), o, out.diag, asio::as_tuple(asio::use_awaitable));
  reads_in_flight.erase(claim);
  out.ec = ec;
  out.result = std::move(r);
  co_return out;
}

asio::awaitable<group_outcome> store_impl::group(std::vector<pg::query> qs, bool read) {
  queries.add(qs.size() + (read ? 0 : write_overhead));
  pg::query_options o;
  o.retry_on_connection_loss = read;
  o.position_after_commit = !read;
  std::optional<std::multiset<pg::lsn>::iterator> claim;
  if (read) claim = reads_in_flight.insert(claim_now());
  group_outcome out;
  auto [ec, rs] = co_await pool.async_pipeline(std::move(qs), o, out.diag, asio::as_tuple(asio::use_awaitable));
  if (claim) reads_in_flight.erase(*claim);
  out.ec = ec;
  out.results = std::move(rs);
  if (!read && !ec) {
    // The position is the store's, not the caller's result.
    auto text = out.results.back().get<std::string>(0, 0);
    if (auto p = text ? pg::parse_lsn(*text) : std::nullopt) observe(*p);
    out.results.pop_back();
  }
  co_return out;
}

asio::awaitable<result<read_plan>> store_impl::begin_read(const consistency* c) {
  read_plan plan;
  plan.position = reads_in_flight.empty() ? claim_now() : std::min(*reads_in_flight.begin(), claim_now());
  if (c == nullptr || c->min_position == pg::lsn{}) co_return plan;
  if (c->min_position > observed) {
    naive_queries.add(1);  // one check per read without batching
    // Not a batch from before this read arrived: that one may not have reached it yet.
    primary_position.clear(0);
    diagnostics d;
    auto [ec, now] = co_await primary_position.async_load(0, d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return failure_of(ec, d);
    if (c->min_position > now)
      co_return failure{errc::invalid_argument,
                        "min_position: " + pg::to_string(c->min_position) + " is beyond the primary's current position " +
                            pg::to_string(now) + " (a position from another database?)"};
  }
  plan.fresh = c->min_position > plan.position;
  plan.position = std::max(plan.position, c->min_position);
  co_return plan;
}

void store_impl::forget_user(const std::string& user_id) {
  profiles.clear(user_id);
  onboarding.clear(user_id);
  for (int limit : limits_seen) snapshots.clear(snapshot_key{user_id, limit});
}

}  // namespace dataloader::store::detail
