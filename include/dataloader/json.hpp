// JSON from outside the process (request bodies, jsonb read back from the database),
// parsed without recursion and refused past a nesting limit.
//
// nlohmann::json parses iteratively and destroys iteratively, but copies, compares and
// serializes by recursion: one C++ frame per level. A tree that came through
// parse_json() is at most max_json_depth deep, so those walks stay far from the stack's
// end whatever a client sends (a 100,000-deep body used to overflow it).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dataloader {

// Deep enough for any real document (onboarding state is a few levels), far from the
// stack: serde_json's default recursion limit, 128. The outermost object or array is
// level 1.
inline constexpr std::size_t max_json_depth = 128;

// Why a text is not acceptable JSON. `field` names the top-level member a too-deep value
// sits in ("state"), empty when the problem is the document as a whole (malformed JSON
// with its byte offset, invalid UTF-8).
struct json_error {
  std::string field;
  std::string message;
};

// The parsed value, or nullopt with `error` saying why.
std::optional<nlohmann::json> parse_json(std::string_view text, json_error& error,
                                         std::size_t max_depth = max_json_depth);

// Whether `value` nests at most `max_depth` levels; walks the tree with a heap stack,
// so any depth is safe to ask about.
bool json_depth_within(const nlohmann::json& value, std::size_t max_depth = max_json_depth);

}  // namespace dataloader
