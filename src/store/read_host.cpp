#include "read_host.hpp"

#include "batch_reads.hpp"
#include "store_impl.hpp"

#include "dataloader/pg/sqlstate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace dataloader::store::detail {

read_host::read_host(store_impl& s, pg::connection_pool& p, bool is_primary)
    : store(s),
      pool(p),
      primary(is_primary),
      profiles(s.pool.get_executor(), [this](std::span<const std::string> ids) { return read_profiles(*this, ids); },
               s.loader_opts("profiles", p)),
      onboarding(s.pool.get_executor(),
                 [this](std::span<const std::string> ids) { return read_onboarding(*this, ids); },
                 s.loader_opts("onboarding", p)),
      snapshots(s.pool.get_executor(),
                [this](std::span<const snapshot_key> keys) { return read_snapshots(*this, keys); },
                s.loader_opts("user_snapshots", p)),
      pages(s.pool.get_executor(), [this](std::span<const page_key> keys) { return read_pages(*this, keys); },
            s.loader_opts("memory_pages", p)) {}

std::size_t page_key_hash::operator()(const page_key& k) const noexcept {
  std::size_t h = std::hash<std::string>{}(k.user_id);
  const auto mix = [&h](std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(std::hash<std::string>{}(k.category));
  mix(std::hash<std::string>{}(k.after_key));
  mix(static_cast<std::size_t>(k.after_updated_at.time_since_epoch().count()));
  mix(static_cast<std::size_t>(k.rows));
  mix(static_cast<std::size_t>(k.epoch));
  return h;
}

pg::lsn read_host::claim_now() const { return primary ? store.primary_claim() : replayed(); }

pg::lsn read_host::claim_floor() const {
  const pg::lsn now = claim_now();
  return reads_in_flight_.empty() ? now : std::min(*reads_in_flight_.begin(), now);
}

namespace {

// A replica that cannot answer is not waited for: the read goes to the primary, which has
// everything the replica had. That is: down, unreachable or past the deadline, shutting
// down or starting up (57P01-57P03), out of connections, or a statement cancelled by a
// conflict with recovery (57014, 40001): every transient server error.
bool replica_unavailable(const error_code& ec) {
  return ec == errc::connection_lost || ec == errc::outcome_unknown || ec == errc::timeout ||
         ec == errc::pool_timeout || ec == errc::pool_closed || pg::is_transient(ec);
}

}  // namespace

asio::awaitable<query_outcome> read_host::query(const pg::statement& st, pg::params args) {
  store.queries.add();
  pg::query_options o;
  o.retry_on_connection_loss = true;
  std::optional<pg::params> again;
  if (!primary) again = args;
  query_outcome out;
  const auto claim = reads_in_flight_.insert(claim_now());
  auto [ec, r] = co_await pool.async_query(st, std::move(args), o, out.diag, asio::as_tuple(asio::use_awaitable));
  reads_in_flight_.erase(claim);
  if (again && replica_unavailable(ec)) {
    state.connected.store(false, std::memory_order_relaxed);  // until the next probe answers
    co_return co_await store.primary_host().query(st, std::move(*again));
  }
  out.ec = ec;
  out.result = std::move(r);
  co_return out;
}

asio::awaitable<group_outcome> read_host::group(std::vector<pg::query> qs) {
  store.queries.add(qs.size());
  pg::query_options o;
  o.retry_on_connection_loss = true;
  std::optional<std::vector<pg::query>> again;
  if (!primary) again = qs;
  group_outcome out;
  const auto claim = reads_in_flight_.insert(claim_now());
  auto [ec, rs] = co_await pool.async_pipeline(std::move(qs), o, out.diag, asio::as_tuple(asio::use_awaitable));
  reads_in_flight_.erase(claim);
  if (again && replica_unavailable(ec)) {
    state.connected.store(false, std::memory_order_relaxed);
    co_return co_await store.primary_host().group(std::move(*again));
  }
  out.ec = ec;
  out.results = std::move(rs);
  co_return out;
}

void read_host::forget_user(const std::string& user_id, const std::set<int>& limits) {
  profiles.clear(user_id);
  onboarding.clear(user_id);
  for (int limit : limits) snapshots.clear(snapshot_key{user_id, limit});
}

}  // namespace dataloader::store::detail
