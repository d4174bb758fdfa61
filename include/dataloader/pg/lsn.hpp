// A position in PostgreSQL's write-ahead log (the pg_lsn type), as the Dataloader-LSN and
// Dataloader-Min-LSN headers carry it (SPEC.md): two hexadecimal numbers of 1 to 8 digits,
// "X/Y", the high and low 32 bits.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dataloader::pg {

struct lsn {
  std::uint64_t value = 0;
  friend auto operator<=>(const lsn&, const lsn&) = default;
};

// Exactly what PostgreSQL's pg_lsn input accepts: 1 to 8 hex digits (either case), '/',
// 1 to 8 hex digits, nothing else (no sign, no spaces). nullopt otherwise.
std::optional<lsn> parse_lsn(std::string_view text);

// PostgreSQL's own form: upper-case hex without leading zeros ("16/B374D848", "0/0").
std::string to_string(lsn position);

}  // namespace dataloader::pg
