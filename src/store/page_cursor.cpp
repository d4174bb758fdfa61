#include "page_cursor.hpp"

#include "dataloader/text.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>

namespace dataloader::store::detail {

namespace {

constexpr std::uint8_t version = 1;
constexpr std::size_t max_cursor_chars = 1024;  // a real one is at most ~720

// SipHash-2-4 (Aumasson and Bernstein): a keyed 64-bit hash, so that a cursor's check
// cannot be recomputed by accident, e.g. by editing one byte of the text.
std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

std::uint64_t siphash(std::string_view data, std::uint64_t k0, std::uint64_t k1) {
  std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  std::uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  const auto round = [&] {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  };
  const auto compress = [&](std::uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  };
  const std::size_t whole = data.size() / 8 * 8;
  for (std::size_t i = 0; i < whole; i += 8) {
    std::uint64_t m = 0;
    for (int b = 7; b >= 0; --b) m = (m << 8) | static_cast<std::uint8_t>(data[i + b]);
    compress(m);
  }
  std::uint64_t last = static_cast<std::uint64_t>(data.size() & 0xff) << 56;
  for (std::size_t i = whole; i < data.size(); ++i)
    last |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(data[i])) << (8 * (i - whole));
  compress(last);
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

// Fixed keys, different for the two uses (see the header: integrity, not secrecy).
std::uint64_t binding_hash(std::string_view data) { return siphash(data, 0x6173696f2d64616cULL, 0x6f616465722d7067ULL); }
std::uint64_t check_hash(std::string_view data) { return siphash(data, 0x706167652d637572ULL, 0x736f722d76312121ULL); }

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}
void put_text(std::string& out, std::string_view s) {
  out += static_cast<char>((s.size() >> 8) & 0xff);
  out += static_cast<char>(s.size() & 0xff);
  out.append(s);
}

// Reads what put_u64/put_text wrote; false past the end.
struct reader {
  std::string_view in;
  bool u64(std::uint64_t& v) {
    if (in.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[i]);
    in.remove_prefix(8);
    return true;
  }
  bool text(std::string& s) {
    if (in.size() < 2) return false;
    const std::size_t n = (static_cast<std::uint8_t>(in[0]) << 8) | static_cast<std::uint8_t>(in[1]);
    if (in.size() < 2 + n) return false;
    s.assign(in.substr(2, n));
    in.remove_prefix(2 + n);
    return true;
  }
};

// The listing a cursor belongs to: the user and the filter, keys as a set (their order
// and repeats do not change what is listed).
std::uint64_t binding_of(std::string_view user_id, const memory_filter& filter) {
  std::string b;
  put_text(b, user_id);
  b += filter.category ? 'c' : '-';
  if (filter.category) put_text(b, *filter.category);
  b += filter.keys ? 'k' : '-';
  if (filter.keys)
    for (const auto& k : std::set<std::string>(filter.keys->begin(), filter.keys->end())) put_text(b, k);
  return binding_hash(b);
}

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : in) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += alphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += alphabet[(bits << (6 - count)) & 63];
  return out;
}

// Strict: only the alphabet, no padding, and unused trailing bits zero (so that one
// cursor has exactly one text).
std::optional<std::string> from_base64url(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    const auto at = alphabet.find(c);
    if (at == std::string_view::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(at);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  if ((bits & ((1u << count) - 1)) != 0) return std::nullopt;
  return out;
}

failure refused(const std::string& why) { return {errc::invalid_argument, "after: " + why}; }

}  // namespace

std::string encode_cursor(const page_position& after, std::string_view user_id, const memory_filter& filter) {
  std::string raw;
  raw += static_cast<char>(version);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(after.updated_at.time_since_epoch()).count();
  put_u64(raw, static_cast<std::uint64_t>(us));
  put_text(raw, after.category);
  put_text(raw, after.key);
  put_u64(raw, binding_of(user_id, filter));
  put_u64(raw, check_hash(raw));
  return base64url(raw);
}

result<page_position> decode_cursor(std::string_view text, std::string_view user_id, const memory_filter& filter) {
  if (text.empty()) return refused("empty cursor (pass the `next` of the previous page)");
  if (text.size() > max_cursor_chars) return refused("not a cursor (longer than any cursor)");
  auto raw = from_base64url(text);
  if (!raw || raw->size() < 1 + 8 + 8) return refused("not a cursor (malformed)");
  const std::string_view body(raw->data(), raw->size() - 8);
  reader tail{std::string_view(*raw).substr(body.size())};
  std::uint64_t check = 0;
  tail.u64(check);
  if (check != check_hash(body)) return refused("not a cursor (altered or truncated)");
  if (static_cast<std::uint8_t>(body[0]) != version) return refused("cursor of an unknown version");
  reader r{body.substr(1)};
  std::uint64_t us = 0, binding = 0;
  page_position p;
  if (!r.u64(us) || !r.text(p.category) || !r.text(p.key) || !r.u64(binding) || !r.in.empty())
    return refused("not a cursor (malformed)");
  // Only a forged cursor (its keys are in the source) carries names no memory can have;
  // refused here, they never reach a statement.
  for (const std::string* name : {&p.category, &p.key})
    if (name->empty() || name->size() > max_name_bytes || !text_problem(*name).empty())
      return refused("not a cursor (malformed)");
  if (binding != binding_of(user_id, filter))
    return refused("cursor of another listing (another user, category or keys)");
  const auto micros = static_cast<std::int64_t>(us);
  constexpr std::int64_t clock_range_us = 9'000'000'000'000'000;  // what a nanosecond clock holds, about
  if (micros < -clock_range_us || micros > clock_range_us) return refused("not a cursor (time out of range)");
  p.updated_at = timestamp(std::chrono::duration_cast<timestamp::duration>(
      std::chrono::microseconds(micros)));
  return p;
}

}  // namespace dataloader::store::detail
