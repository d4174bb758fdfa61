// Request targets: path segments and query parameters, percent-decoded.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dataloader::http {

// Percent-decodes `s`; nullopt when an escape is malformed ("%", "%4", "%zz").
// '+' stays '+': these are path segments and query values, not form bodies.
std::optional<std::string> percent_decode(std::string_view s);

struct target {
  std::vector<std::string> segments;                         // decoded; "/a/b%2Fc" -> {"a", "b/c"}
  std::vector<std::pair<std::string, std::string>> query;   // decoded, in order
  // Values of a parameter, in order of appearance.
  std::vector<std::string> all(std::string_view name) const;
  std::optional<std::string> first(std::string_view name) const;
};

// nullopt with `error` set when a segment or parameter is not validly percent-encoded.
std::optional<target> parse_target(std::string_view raw, std::string& error);

}  // namespace dataloader::http
