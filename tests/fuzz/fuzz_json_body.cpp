// JSON from outside (request bodies, jsonb read back): parse_json never crashes or
// recurses whatever the nesting, accepts only trees within the limit, and what it
// accepts serializes and parses back to the same value.
#include "dataloader/json.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  dataloader::json_error error;
  auto value = dataloader::parse_json(text, error);
  if (!value) {
    if (error.message.empty()) std::abort();
    return 0;
  }
  if (!dataloader::json_depth_within(*value)) std::abort();
  const auto dumped = value->dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  auto again = dataloader::parse_json(dumped, error);
  if (!again || *again != *value) std::abort();
  return 0;
}
