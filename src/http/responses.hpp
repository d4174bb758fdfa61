// Building responses: JSON bodies for the hot routes written as text (json_writer), the
// others through nlohmann::json.
#pragma once

#include "dataloader/http/service.hpp"
#include "dataloader/store/types.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace dataloader::http::detail {

response make_json_text(unsigned status, std::string body, unsigned version, bool keep_alive);
response make_json(unsigned status, const nlohmann::json& body, unsigned version, bool keep_alive);

std::string memories_body(const store::memory_page& page);
std::string prefetch_body(const store::prefetch_result& r);

// A cached snapshot's prefetch answer as text, rendered once and kept with the snapshot
// (memory_store::keep_rendering): body(n) equals prefetch_body of the snapshot cut to its
// first n memories, for every n up to the snapshot's memories, so one rendering serves
// every memory_limit, and a hit copies two contiguous runs of text.
class prefetch_text final : public store::snapshot_rendering {
 public:
  explicit prefetch_text(const store::prefetch_result& snapshot);
  std::string body(std::size_t memories) const;
  std::size_t bytes() const noexcept override;

 private:
  std::string text_;                 // the answer with every memory of the snapshot
  std::size_t head_end_ = 0;         // just after recent_memories' '['
  std::vector<std::uint32_t> ends_;  // just after each memory
  std::size_t tail_begin_ = 0;       // at recent_memories' ']'
};

std::string search_body(const store::search_results& results);

}  // namespace dataloader::http::detail
