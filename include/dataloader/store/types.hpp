// What the memory store reads and writes.
#pragma once

#include "dataloader/text.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dataloader::store {

struct memory {
  std::string user_id;
  std::string category;
  std::string key;
  std::string value;
  timestamp created_at;
  timestamp updated_at;
  friend bool operator==(const memory&, const memory&) = default;
};

struct memory_input {
  std::string user_id;
  std::string category;
  std::string key;
  std::string value;
};

// A user's most recently updated memories (newest first) and how many they have.
struct recent_memories {
  std::vector<memory> memories;
  std::int64_t count = 0;
};

struct prefetch_result {
  std::string user_id;
  std::optional<std::string> profile;
  std::vector<memory> recent_memories;
  std::optional<nlohmann::json> onboarding;
  std::int64_t memory_count = 0;
};

// What a caller derives from a cached snapshot once and keeps with it (the HTTP layer:
// the prefetch answer's JSON text), handed over by memory_store::keep_rendering. Later
// hits reuse it instead of deriving it again from memories scattered over the heap.
// Immutable once kept; dropped with its snapshot; counted in the cache's bytes.
class snapshot_rendering {
 public:
  virtual ~snapshot_rendering() = default;
  virtual std::size_t bytes() const noexcept = 0;
};

// A prefetch answered from the cache across requests (memory_store::try_cached_prefetch):
// the cached snapshot, shared and never modified, of which the answer's recent memories
// are the first `memories` (a snapshot read for a larger limit holds more).
struct cached_prefetch {
  std::shared_ptr<const prefetch_result> snapshot;
  std::size_t memories = 0;
  std::shared_ptr<const snapshot_rendering> rendering;  // what keep_rendering kept for this snapshot, or null
  std::span<const memory> recent_memories() const noexcept { return {snapshot->recent_memories.data(), memories}; }
};

struct memory_filter {
  std::optional<std::string> category;
  std::optional<std::vector<std::string>> keys;
  int limit = 100;
  // A page's `next`: continue the listing (same user and filter) after its last memory.
  std::optional<std::string> after;
};

// One page of a user's memories, newest first (updated_at, then category and key). `next`
// continues after its last memory; none when nothing follows. Paging is keyset-based:
// every page costs the same at any depth, and while memories are written between pages
// none is returned twice and none that stayed unchanged through the walk is skipped (a
// memory written during the walk moves ahead of the cursor, so it may be missed).
struct memory_page {
  std::vector<memory> memories;
  std::optional<std::string> next;
};

using search_results = std::map<std::string, std::vector<memory>>;

// Limits fixed by the product contract (SPEC.md).
inline constexpr std::size_t max_name_bytes = 256;          // user_id, category, key
inline constexpr std::size_t max_text_bytes = 64 * 1024;    // value, profile
inline constexpr int default_memory_limit = 20;
inline constexpr int max_memory_limit = 100;                // prefetch memory_limit, search limit_per_category
inline constexpr int max_list_limit = 1000;                 // GET memories limit

}  // namespace dataloader::store
