// Building responses: JSON bodies for the hot routes written as text (json_writer), the
// others through nlohmann::json.
#pragma once

#include "dataloader/http/service.hpp"
#include "dataloader/store/types.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dataloader::http::detail {

response make_json_text(unsigned status, std::string body, unsigned version, bool keep_alive);
response make_json(unsigned status, const nlohmann::json& body, unsigned version, bool keep_alive);

std::string memories_body(const store::memory_page& page);
// `recent`: r.recent_memories, or the first of them (a cached snapshot read for a larger limit).
std::string prefetch_body(const store::prefetch_result& r, std::span<const store::memory> recent);

// A cached snapshot's prefetch answer as text, rendered once and kept with the snapshot
// (memory_store::keep_rendering): body(n) equals prefetch_body(snapshot, its first n
// memories) for every n up to the snapshot's memories, so one rendering serves every
// memory_limit, and a hit copies three contiguous runs of text.
class prefetch_text final : public store::snapshot_rendering {
 public:
  explicit prefetch_text(const store::prefetch_result& snapshot);
  std::string body(std::size_t memories) const;
  std::size_t bytes() const noexcept override;

 private:
  std::string head_;                // up to the opening '[' of recent_memories
  std::string memories_;            // the memories, comma-separated
  std::vector<std::uint32_t> ends_;  // where each memory ends in memories_
  std::string tail_;                // from the closing ']' on
};

std::string search_body(const store::search_results& results);

}  // namespace dataloader::http::detail
