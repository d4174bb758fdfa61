#include "batch_writes.hpp"

#include "sql.hpp"

#include <algorithm>
#include <map>
#include <string_view>
#include <tuple>

namespace dataloader::store::detail {
namespace {

using key_view = std::tuple<std::string_view, std::string_view, std::string_view>;
key_view key_of(const memory_input& m) { return {m.user_id, m.category, m.key}; }

std::int64_t distinct_keys(const std::vector<memory_input>& items) {
  if (items.size() < 2) return static_cast<std::int64_t>(items.size());
  std::vector<key_view> keys;
  keys.reserve(items.size());
  for (const auto& m : items) keys.push_back(key_of(m));
  std::sort(keys.begin(), keys.end());
  return static_cast<std::int64_t>(std::unique(keys.begin(), keys.end()) - keys.begin());
}

template <class T>
std::vector<T> slice(const std::vector<T>& v, std::size_t begin, std::size_t end) {
  return std::vector<T>(v.begin() + static_cast<std::ptrdiff_t>(begin), v.begin() + static_cast<std::ptrdiff_t>(end));
}

}  // namespace

std::vector<memory_input> merge_last_wins(std::span<const save_request* const> requests) {
  std::vector<memory_input> merged;
  for (const auto* r : requests) merged.insert(merged.end(), r->items.begin(), r->items.end());
  // Rows in key order: concurrent upserts on different connections then lock rows in the
  // same order and wait for each other instead of deadlocking (measured: a 0.9 s p99 under
  // 64 concurrent writers before, PostgreSQL's deadlock_timeout). Stable, so that equal
  // keys stay in submission order and the last of each run is the one that wins.
  std::stable_sort(merged.begin(), merged.end(),
                   [](const memory_input& a, const memory_input& b) { return key_of(a) < key_of(b); });
  auto out = merged.begin();
  for (auto it = merged.begin(); it != merged.end(); ++it) {
    if (std::next(it) != merged.end() && key_of(*it) == key_of(*std::next(it))) continue;
    if (out != it) *out = std::move(*it);
    ++out;
  }
  merged.erase(out, merged.end());
  return merged;
}

std::vector<pg::query> chunked_upserts(std::vector<memory_input> rows, std::size_t max_batch) {
  std::vector<pg::query> out;
  for (std::size_t start = 0; start < rows.size(); start += max_batch) {
    std::vector<std::string> users, categories, keys, values;
    for (std::size_t i = start; i < std::min(rows.size(), start + max_batch); ++i) {
      users.push_back(std::move(rows[i].user_id));
      categories.push_back(std::move(rows[i].category));
      keys.push_back(std::move(rows[i].key));
      values.push_back(std::move(rows[i].value));
    }
    out.push_back({&sql::save_memories, pg::params(users, categories, keys, values)});
  }
  return out;
}

std::vector<std::int64_t> rows_written(std::span<const save_request* const> requests) {
  std::vector<std::int64_t> out;
  out.reserve(requests.size());
  for (const auto* r : requests) out.push_back(distinct_keys(r->items));
  return out;
}

std::vector<pg::query> batched_deletes(std::span<const delete_request* const> requests, std::size_t max_batch) {
  std::vector<std::string> users, categories, keys;
  for (const auto* r : requests)
    for (const auto& k : r->keys) {
      users.push_back(r->user_id);
      categories.push_back(r->category);
      keys.push_back(k);
    }
  std::vector<pg::query> out;
  for (std::size_t start = 0; start < keys.size(); start += max_batch) {
    const auto end = std::min(keys.size(), start + max_batch);
    out.push_back({&sql::delete_memories,
                   pg::params(slice(users, start, end), slice(categories, start, end), slice(keys, start, end))});
  }
  return out;
}

std::vector<std::int64_t> rows_deleted(std::span<const delete_request* const> requests,
                                       const std::vector<pg::result>& results) {
  std::vector<std::int64_t> counts(requests.size(), 0);
  for (const auto& r : results)
    for (std::size_t row = 0; row < r.rows(); ++row) {
      const auto user = r.get<std::string>(row, 0);
      const auto category = r.get<std::string>(row, 1);
      const auto key = r.get<std::string>(row, 2);
      for (std::size_t c = 0; c < requests.size(); ++c) {
        const auto* d = requests[c];
        if (d->user_id == user && (d->category.empty() || d->category == category) &&
            std::find(d->keys.begin(), d->keys.end(), key) != d->keys.end()) {
          ++counts[c];
          break;
        }
      }
    }
  return counts;
}

std::vector<pg::query> last_put_per_user(const pg::statement& upsert, std::span<const put_request* const> requests) {
  std::map<std::string_view, std::string_view> last;
  for (const auto* r : requests) last[r->user_id] = r->value;
  std::vector<std::string> users, values;
  for (auto& [u, v] : last) {
    users.emplace_back(u);
    values.emplace_back(v);
  }
  std::vector<pg::query> out;
  out.push_back({&upsert, pg::params(users, values)});
  return out;
}

}  // namespace dataloader::store::detail
