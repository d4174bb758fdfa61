// PostgreSQL text arrays: decoding arbitrary bytes never crashes; encoding any list of
// strings and decoding it gives the list back.
#include "dataloader/pg/types.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  (void)dataloader::pg::decode_text_array(raw);
  // The same bytes as a list: elements split at 0x1F.
  std::vector<std::string> items;
  std::string current;
  for (char c : raw) {
    if (c == '\x1f') {
      items.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  items.push_back(std::move(current));
  auto decoded = dataloader::pg::decode_text_array(dataloader::pg::encode_text_array(items));
  if (!decoded || *decoded != items) std::abort();
  return 0;
}
