// The store's counters (SPEC.md /stats).
//
// queries counts every statement the store sends to PostgreSQL, retries included. It does
// not count migrations or health checks, which are sent outside the store; so it equals
// what pg_stat_statements records for the store's statements.
//
// queries_saved compares with what a one-statement-per-lookup implementation sends for
// the same calls: prefetch 4 per user (profile, recent memories, memory count,
// onboarding); profiles and onboarding 1 per id; recent memories 2 per user; get
// memories 1; saves 1 per item; deletes 1 per key; search 1 per category; put profile
// and put onboarding 1 each.
#pragma once

#include "dataloader/loader/stats.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace dataloader::store {

struct store_stats {
  std::uint64_t total_operations = 0;  // calls into the store
  std::uint64_t loads = 0;             // key lookups requested from the store's loaders
  std::uint64_t queries = 0;           // statements sent
  std::uint64_t naive_queries = 0;     // what one statement per lookup would have sent
  std::uint64_t retried_statements = 0;  // statements resent by write bisection
  std::int64_t queries_saved() const noexcept {
    return static_cast<std::int64_t>(naive_queries) - static_cast<std::int64_t>(queries);
  }
  double efficiency_gain() const noexcept {
    return queries == 0 ? 0.0 : static_cast<double>(queries_saved()) / static_cast<double>(queries);
  }
  std::map<std::string, loader_stats> loaders;
};

}  // namespace dataloader::store
