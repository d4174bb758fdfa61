#include "dataloader/pg/lsn.hpp"

#include "dataloader/text.hpp"

#include <cstdio>

namespace dataloader::pg {
namespace {

// A run of 1 to 8 hex digits at the start of `text`: its value, and `text` advanced past it.
std::optional<std::uint32_t> hex_half(std::string_view& text) {
  std::uint32_t v = 0;
  std::size_t n = 0;
  for (; n < text.size(); ++n) {
    const int digit = hex_digit(text[n]);
    if (digit < 0) break;
    if (n == 8) return std::nullopt;  // a ninth digit
    v = v << 4 | static_cast<std::uint32_t>(digit);
  }
  if (n == 0) return std::nullopt;
  text.remove_prefix(n);
  return v;
}

}  // namespace

std::optional<lsn> parse_lsn(std::string_view text) {
  const auto high = hex_half(text);
  if (!high || text.empty() || text.front() != '/') return std::nullopt;
  text.remove_prefix(1);
  const auto low = hex_half(text);
  if (!low || !text.empty()) return std::nullopt;
  return lsn{std::uint64_t{*high} << 32 | *low};
}

std::string to_string(lsn position) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(position.value >> 32),
                              static_cast<unsigned>(position.value & 0xFFFFFFFFu));
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace dataloader::pg
