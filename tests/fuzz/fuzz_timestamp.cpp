// Timestamps: parsing arbitrary text never crashes; a parsed instant prints as RFC 3339
// and parses back to itself; any instant a timestamp holds (microseconds) formats and
// parses back to itself.
#include "dataloader/text.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto t = dataloader::parse_timestamp(text)) {
    const auto us = time_point_cast<microseconds>(*t);
    auto again = dataloader::parse_timestamp(dataloader::format_rfc3339(*t));
    if (!again || time_point_cast<microseconds>(*again) != us) std::abort();
  }
  if (size >= sizeof(std::int64_t)) {
    std::int64_t us;
    std::memcpy(&us, data, sizeof us);
    // system_clock counts nanoseconds in 64 bits: +-292 years around 1970.
    us %= 9'000'000'000'000'000;
    const dataloader::timestamp t{microseconds(us)};
    auto again = dataloader::parse_timestamp(dataloader::format_rfc3339(t));
    if (!again || *again != t) std::abort();
  }
  return 0;
}
