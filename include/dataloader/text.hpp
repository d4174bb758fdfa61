// Text and time as every layer sees them: UTF-8 checks, hex digits, RFC 3339 timestamps. The pg layer
// uses them to refuse text PostgreSQL would reject and to decode timestamps; the store to
// validate input; the HTTP layer to write JSON.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dataloader {

using timestamp = std::chrono::system_clock::time_point;

// Length of the valid UTF-8 sequence at text[i] (1 for ASCII; RFC 3629: no overlongs, no
// surrogates, at most U+10FFFF), or 0 when the bytes there are not one. i < text.size().
std::size_t utf8_sequence(std::string_view text, std::size_t i);

// The value of one hexadecimal digit (either case), or -1 for any other character.
constexpr int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Why `text` cannot travel as a PostgreSQL text value (a NUL byte, invalid UTF-8, with
// the offset), or empty when it can.
std::string text_problem(std::string_view text);

// "2026-11-25T12:34:56.123456Z": microseconds, always UTC.
std::string format_rfc3339(timestamp t);
void append_rfc3339(std::string& out, timestamp t);

// PostgreSQL's ISO output ("2026-11-25 12:34:56.123456+00", any offset) or RFC 3339;
// nullopt for anything else, and for instants the system clock cannot hold (with
// libstdc++'s nanosecond clock: before 1677-09-22 or after 2262-04-11).
std::optional<timestamp> parse_timestamp(std::string_view text);

}  // namespace dataloader
