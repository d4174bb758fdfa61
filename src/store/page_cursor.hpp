// The `after` cursor of a memory listing: where the previous page ended (updated_at,
// category and key of its last memory), bound to the user and filter it pages through.
//
// Text form: base64url (no padding) of
//   version (1 byte) | updated_at, microseconds since the epoch (8, big-endian)
//   | category length (2) and bytes | key length (2) and bytes
//   | binding (8): SipHash-2-4 of the user id and the filter
//   | check (8): SipHash-2-4 of everything before it.
// The check makes a cursor tamper-evident (an edited or truncated one is refused, never
// read as a different position); the binding refuses a cursor of another user or filter.
// Neither is a secret: a forged cursor reaches only pages of a listing the caller can
// read anyway. Cursors stay valid across instances and restarts (the keys are fixed).
#pragma once

#include "dataloader/result.hpp"
#include "dataloader/store/types.hpp"

#include <string>
#include <string_view>

namespace dataloader::store::detail {

struct page_position {
  timestamp updated_at;
  std::string category;
  std::string key;
  friend bool operator==(const page_position&, const page_position&) = default;
};

std::string encode_cursor(const page_position& after, std::string_view user_id, const memory_filter& filter);

// The position, or errc::invalid_argument with a message naming `after`.
result<page_position> decode_cursor(std::string_view text, std::string_view user_id, const memory_filter& filter);

}  // namespace dataloader::store::detail
