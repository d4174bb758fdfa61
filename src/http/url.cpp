#include "dataloader/http/url.hpp"

#include "dataloader/text.hpp"

namespace dataloader::http {

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::vector<std::string> target::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : query)
    if (k == name) out.push_back(v);
  return out;
}

std::optional<std::string> target::first(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return v;
  return std::nullopt;
}

std::optional<target> parse_target(std::string_view raw, std::string& error) {
  target t;
  const auto q = raw.find('?');
  std::string_view path = raw.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view{} : raw.substr(q + 1);
  if (path.empty() || path.front() != '/') {
    error = "the request target must be an absolute path";
    return std::nullopt;
  }
  path.remove_prefix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    auto seg = percent_decode(path.substr(0, slash));
    if (!seg) {
      error = "malformed percent-encoding in the path";
      return std::nullopt;
    }
    t.segments.push_back(std::move(*seg));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (path.empty()) t.segments.emplace_back();  // trailing slash: an empty last segment
  }
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      auto key = percent_decode(pair.substr(0, eq));
      auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
      if (!key || !value) {
        error = "malformed percent-encoding in the query string";
        return std::nullopt;
      }
      t.query.emplace_back(std::move(*key), std::move(*value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return t;
}

}  // namespace dataloader::http
