// What the coalesced writers send for a tick's callers, and what each caller is answered:
// one upsert of every caller's rows (last entry per key wins), one delete of every
// caller's keys, one upsert of profiles or onboarding states (last per user wins).
#pragma once

#include "dataloader/pg/result.hpp"
#include "dataloader/pg/statement.hpp"
#include "dataloader/store/types.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dataloader::store::detail {

struct save_request {
  std::vector<memory_input> items;
};
struct put_request {
  std::string user_id;
  std::string value;  // profile text, or onboarding state as JSON text
};
struct delete_request {
  std::string user_id;
  std::vector<std::string> keys;
  std::string category;  // empty: any
};

// Every caller's items as one list in key order, the last entry for a key winning (in
// submission order).
std::vector<memory_input> merge_last_wins(std::span<const save_request* const> requests);
// Upserts of `rows`, at most `max_batch` per statement.
std::vector<pg::query> chunked_upserts(std::vector<memory_input> rows, std::size_t max_batch);
// The rows each caller's save wrote: its distinct keys.
std::vector<std::int64_t> rows_written(std::span<const save_request* const> requests);

// Deletes of every caller's keys, at most `max_batch` per statement.
std::vector<pg::query> batched_deletes(std::span<const delete_request* const> requests, std::size_t max_batch);
// Each deleted row counted for the first caller that asked for it.
std::vector<std::int64_t> rows_deleted(std::span<const delete_request* const> requests,
                                       const std::vector<pg::result>& results);

// One upsert through `upsert` ($1 users, $2 values), the last value per user winning, in
// user order.
std::vector<pg::query> last_put_per_user(const pg::statement& upsert, std::span<const put_request* const> requests);

}  // namespace dataloader::store::detail
