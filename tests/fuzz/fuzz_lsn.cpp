// The LSN text form of the Dataloader-Min-LSN header (SPEC.md): parsing arbitrary bytes
// never crashes; what parses prints back in PostgreSQL's canonical form, which parses to
// the same position; and every position survives print-then-parse.
#include "dataloader/pg/lsn.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dataloader::pg;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto parsed = parse_lsn(text)) {
    if (text.size() > 17 || text.find('/') == std::string_view::npos) std::abort();
    const auto canonical = to_string(*parsed);
    auto again = parse_lsn(canonical);
    if (!again || *again != *parsed || to_string(*again) != canonical) std::abort();
  }
  if (size >= sizeof(std::uint64_t)) {
    lsn position;
    std::memcpy(&position.value, data, sizeof position.value);
    auto round = parse_lsn(to_string(position));
    if (!round || *round != position) std::abort();
  }
  return 0;
}
