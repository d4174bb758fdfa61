#include "naive.hpp"

#include "rows.hpp"
#include "sql.hpp"

namespace dataloader::store::detail::naive {
namespace {

template <class V>
asio::awaitable<result<std::vector<std::optional<V>>>> by_ids(read_host& s, std::vector<std::string> ids,
                                                             const pg::statement& one) {
  std::vector<std::optional<V>> out;
  for (const auto& id : ids) {
    auto o = co_await s.query(one, pg::params(id));
    if (o.ec) co_return failure_of(o.ec, o.diag);
    out.push_back(o.result.rows() ? o.result.template get<V>(0, 0) : std::nullopt);
  }
  co_return out;
}

}  // namespace

asio::awaitable<result<std::vector<std::optional<std::string>>>> profiles(read_host& s, std::vector<std::string> ids) {
  return by_ids<std::string>(s, std::move(ids), sql::naive_profile);
}

asio::awaitable<result<std::vector<std::optional<nlohmann::json>>>> onboarding(read_host& s,
                                                                               std::vector<std::string> ids) {
  return by_ids<nlohmann::json>(s, std::move(ids), sql::naive_onboarding);
}

asio::awaitable<result<recent_memories>> recent(read_host& s, std::string user_id, int limit) {
  recent_memories rm;
  auto o = co_await s.query(sql::naive_recent, pg::params(user_id, limit));
  if (o.ec) co_return failure_of(o.ec, o.diag);
  rm.memories = decode_memories(o.result, 1, user_id);
  auto c = co_await s.query(sql::naive_count, pg::params(user_id));
  if (c.ec) co_return failure_of(c.ec, c.diag);
  rm.count = c.result.get<std::int64_t>(0, 0).value_or(0);
  co_return rm;
}

asio::awaitable<result<prefetch_result>> prefetch(read_host& s, std::string user_id, int limit) {
  prefetch_result out;
  out.user_id = user_id;
  auto p = co_await s.query(sql::naive_profile, pg::params(user_id));
  if (p.ec) co_return failure_of(p.ec, p.diag);
  if (p.result.rows()) out.profile = p.result.get<std::string>(0, 0);
  auto rm = co_await recent(s, user_id, limit);
  if (!rm) co_return rm.get_failure();
  out.recent_memories = std::move(rm->memories);
  out.memory_count = rm->count;
  auto o = co_await s.query(sql::naive_onboarding, pg::params(user_id));
  if (o.ec) co_return failure_of(o.ec, o.diag);
  if (o.result.rows()) out.onboarding = o.result.get<nlohmann::json>(0, 0);
  co_return out;
}

asio::awaitable<result<std::int64_t>> save(store_impl& s, std::vector<memory_input> items) {
  save_request one{std::move(items)};
  const save_request* only = &one;
  auto rows = merge_last_wins({&only, 1});
  std::vector<pg::query> qs;
  for (const auto& m : rows)
    qs.push_back({&sql::save_memories,
                  pg::params(std::vector<std::string>{m.user_id}, std::vector<std::string>{m.category},
                             std::vector<std::string>{m.key}, std::vector<std::string>{m.value})});
  auto o = co_await s.group(std::move(qs), false);
  if (o.ec) co_return failure_of(o.ec, o.diag);
  co_return static_cast<std::int64_t>(rows.size());
}

asio::awaitable<result<std::int64_t>> remove(store_impl& s, const std::string& user_id,
                                             const std::vector<std::string>& keys, const std::string& category) {
  std::vector<pg::query> qs;
  for (const auto& k : keys) qs.push_back({&sql::naive_delete, pg::params(user_id, k, category)});
  auto o = co_await s.group(std::move(qs), false);
  if (o.ec) co_return failure_of(o.ec, o.diag);
  std::int64_t n = 0;
  for (const auto& r : o.results) n += static_cast<std::int64_t>(r.affected_rows());
  co_return n;
}

asio::awaitable<result<search_results>> search(read_host& s, const std::string& user_id,
                                               const std::vector<std::string>& categories, int limit_per_category) {
  std::vector<pg::query> qs;
  for (const auto& c : categories) qs.push_back({&sql::naive_search, pg::params(user_id, c, limit_per_category)});
  auto o = co_await s.group(std::move(qs));
  if (o.ec) co_return failure_of(o.ec, o.diag);
  search_results out;
  for (const auto& c : categories) out[c];
  for (const auto& r : o.results) add_search_rows(out, r, user_id);
  co_return out;
}

asio::awaitable<result<bool>> put(store_impl& s, const pg::statement& upsert, const std::string& user_id,
                                  const std::string& value) {
  auto o = co_await s.query(upsert, pg::params(std::vector<std::string>(1, user_id), std::vector<std::string>(1, value)),
                            false);
  if (o.ec) co_return failure_of(o.ec, o.diag);
  co_return true;
}

}  // namespace dataloader::store::detail::naive
