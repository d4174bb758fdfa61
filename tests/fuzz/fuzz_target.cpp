// Request targets: percent-decoding and query parameters never crash, and what decodes
// re-encodes to a target that decodes the same.
#include "dataloader/http/url.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

std::string encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
      out += static_cast<char>(c);
    else
      out += {'%', hex[c >> 4], hex[c & 15]};
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  (void)dataloader::http::percent_decode(raw);
  std::string error;
  auto t = dataloader::http::parse_target(raw, error);
  if (!t) {
    if (error.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  std::string again = "";
  for (const auto& seg : t->segments) again += "/" + encode(seg);
  if (again.empty()) again = "/";
  if (!t->query.empty()) {
    again += "?";
    for (std::size_t i = 0; i < t->query.size(); ++i)
      again += (i ? "&" : "") + encode(t->query[i].first) + "=" + encode(t->query[i].second);
  }
  auto u = dataloader::http::parse_target(again, error);
  if (!u || u->segments != t->segments || u->query != t->query) std::abort();
  return 0;
}
