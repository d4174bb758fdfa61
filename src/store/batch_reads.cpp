#include "batch_reads.hpp"

#include "rows.hpp"
#include "sql.hpp"

#include <unordered_map>

namespace dataloader::store::detail {

asio::awaitable<std::vector<result<std::optional<std::string>>>> read_profiles(read_host& s,
                                                                               std::span<const std::string> ids) {
  auto out = co_await s.query(sql::get_profiles, pg::params(std::vector<std::string>(ids.begin(), ids.end())));
  if (out.ec) co_return fail_all<std::optional<std::string>>(ids.size(), failure_of(out.ec, out.diag));
  std::unordered_map<std::string, std::string> found;
  for (std::size_t i = 0; i < out.result.rows(); ++i)
    found.emplace(*out.result.get<std::string>(i, 0), *out.result.get<std::string>(i, 1));
  co_return in_key_order(ids, found);
}

asio::awaitable<std::vector<result<std::optional<nlohmann::json>>>> read_onboarding(read_host& s,
                                                                                    std::span<const std::string> ids) {
  auto out = co_await s.query(sql::get_onboarding, pg::params(std::vector<std::string>(ids.begin(), ids.end())));
  if (out.ec) co_return fail_all<std::optional<nlohmann::json>>(ids.size(), failure_of(out.ec, out.diag));
  std::unordered_map<std::string, nlohmann::json> found;
  for (std::size_t i = 0; i < out.result.rows(); ++i) {
    auto state = out.result.get<nlohmann::json>(i, 1);
    if (!state) co_return fail_all<std::optional<nlohmann::json>>(ids.size(), decode_failure());
    found.emplace(*out.result.get<std::string>(i, 0), std::move(*state));
  }
  co_return in_key_order(ids, found);
}

asio::awaitable<std::vector<result<prefetch_result>>> read_snapshots(read_host& s,
                                                                     std::span<const snapshot_key> keys) {
  std::vector<std::string> users, limits;
  users.reserve(keys.size());
  limits.reserve(keys.size());
  for (const auto& k : keys) {
    users.push_back(k.user_id);
    limits.push_back(std::to_string(k.limit));
  }
  auto out = co_await s.query(sql::user_snapshots, pg::params(users, limits));
  if (out.ec) co_return fail_all<prefetch_result>(keys.size(), failure_of(out.ec, out.diag));
  co_return decode_snapshots(users, out.result);
}

}  // namespace dataloader::store::detail
