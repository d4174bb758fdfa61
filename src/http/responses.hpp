// Building responses: JSON bodies for the hot routes written as text (json_writer), the
// others through nlohmann::json.
#pragma once

#include "dataloader/http/service.hpp"
#include "dataloader/store/types.hpp"

#include <nlohmann/json.hpp>

#include <span>
#include <string>
#include <vector>

namespace dataloader::http::detail {

response make_json_text(unsigned status, std::string body, unsigned version, bool keep_alive);
response make_json(unsigned status, const nlohmann::json& body, unsigned version, bool keep_alive);

std::string memories_body(const store::memory_page& page);
// `recent`: r.recent_memories, or the first of them (a cached snapshot read for a larger limit).
std::string prefetch_body(const store::prefetch_result& r, std::span<const store::memory> recent);
std::string search_body(const store::search_results& results);

}  // namespace dataloader::http::detail
