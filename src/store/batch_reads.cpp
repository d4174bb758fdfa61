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

asio::awaitable<std::vector<result<std::vector<memory>>>> read_pages(read_host& s, std::span<const page_key> keys) {
  std::vector<std::string> users, categories, by_keys, key_sets, after_t, after_c, after_k, rows;
  for (auto* column : {&users, &categories, &by_keys, &key_sets, &after_t, &after_c, &after_k, &rows})
    column->reserve(keys.size());
  for (const auto& k : keys) {
    users.push_back(k.user_id);
    categories.push_back(k.category);
    by_keys.push_back(k.keys ? "t" : "f");
    key_sets.push_back(k.keys ? pg::encode_text_array(*k.keys) : "{}");
    after_t.push_back(k.after_updated_at == timestamp::max() ? "infinity" : format_rfc3339(k.after_updated_at));
    after_c.push_back(k.after_category);
    after_k.push_back(k.after_key);
    rows.push_back(std::to_string(k.rows));
  }
  auto out = co_await s.query(sql::memory_pages,
                              pg::params(users, categories, by_keys, key_sets, after_t, after_c, after_k, rows));
  if (out.ec) co_return fail_all<std::vector<memory>>(keys.size(), failure_of(out.ec, out.diag));
  std::vector<result<std::vector<memory>>> pages(keys.size(), std::vector<memory>{});
  for (std::size_t i = 0; i < out.result.rows(); ++i) {
    const auto ord = out.result.get<std::int64_t>(i, 0);
    if (!ord || *ord < 1 || static_cast<std::size_t>(*ord) > keys.size())
      co_return fail_all<std::vector<memory>>(keys.size(), decode_failure());
    auto& page = *pages[*ord - 1];
    if (page.size() == static_cast<std::size_t>(keys[*ord - 1].rows)) continue;  // a tie past the limit
    auto m = decode_memory(out.result, i, 1, keys[*ord - 1].user_id);
    if (!m) co_return fail_all<std::vector<memory>>(keys.size(), decode_failure());
    page.push_back(std::move(*m));
  }
  co_return pages;
}

}  // namespace dataloader::store::detail
