// A save body from outside (POST /v1/memories) on its way to the store: the JSON parser,
// the route's extraction of the "memories" array, then the store's checks of lengths, NUL
// and UTF-8. Never crashes; what passes every check satisfies an independent reading of
// the limits (SPEC.md), and what is refused is refused with a message naming the field.
#include "http/request_parsing.hpp"
#include "store/validation.hpp"

#include "dataloader/json.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

// Well-formed UTF-8 by RFC 3629 (no overlong forms, surrogates or code points past
// U+10FFFF), written apart from the library's own check on purpose.
bool well_formed_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (b < 0x80) { ++i; continue; }
    if (b >= 0xC2 && b <= 0xDF) { n = 1; cp = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) { n = 2; cp = b & 0x0F; }
    else if (b >= 0xF0 && b <= 0xF4) { n = 3; cp = b & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // truncated
    for (std::size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

bool acceptable_name(std::string_view s) {
  return !s.empty() && s.size() <= dataloader::store::max_name_bytes && s.find('\0') == std::string_view::npos &&
         well_formed_utf8(s);
}

bool acceptable_text(std::string_view s) {
  return s.size() <= dataloader::store::max_text_bytes && s.find('\0') == std::string_view::npos &&
         well_formed_utf8(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dataloader;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  json_error error;
  auto body = parse_json(text, error);
  if (!body || !body->is_object()) return 0;
  std::vector<store::memory_input> items;
  if (auto p = http::detail::memories_field(*body, 10'000, items)) {
    if (p->status != 400 || p->message.rfind("memories", 0) != 0) std::abort();
    return 0;
  }
  const auto refused = store::detail::check_items(items);
  bool all_acceptable = true;
  for (const auto& m : items)
    all_acceptable = all_acceptable && acceptable_name(m.user_id) && acceptable_name(m.category) &&
                     acceptable_name(m.key) && acceptable_text(m.value);
  if (refused.empty() != all_acceptable) std::abort();  // the two readings disagree
  if (!refused.empty() && refused.rfind("memories[", 0) != 0) std::abort();
  return 0;
}
