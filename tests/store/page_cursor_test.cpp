// Page cursors without a database: they carry a position exactly, belong to one listing,
// and any other text is refused naming `after`.
#include "store/page_cursor.hpp"

#include <doctest/doctest.h>

using namespace dataloader;
using namespace dataloader::store;
using dataloader::store::detail::decode_cursor;
using dataloader::store::detail::encode_cursor;
using dataloader::store::detail::page_position;

namespace {

timestamp at_micros(std::int64_t us) {
  return timestamp(std::chrono::duration_cast<timestamp::duration>(std::chrono::microseconds(us)));
}

}  // namespace

TEST_CASE("a cursor carries its position exactly, for any names and instants") {
  memory_filter f;
  const std::string long_name(256, 'x');
  for (const auto& p : {page_position{at_micros(1'795'000'000'123'456), "FACT", "k1"},
                        page_position{at_micros(-86'400'000'001), "émoji 🙂", long_name},
                        page_position{at_micros(0), long_name, "ü"}}) {
    const auto text = encode_cursor(p, "user", f);
    CHECK(text.size() < 1024);
    CHECK(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    auto back = decode_cursor(text, "user", f);
    REQUIRE(back);
    CHECK(*back == p);
  }
}

TEST_CASE("a cursor belongs to its user and filter, and keys count as a set") {
  memory_filter f;
  f.category = "GOAL";
  f.keys = std::vector<std::string>{"a", "b"};
  const auto text = encode_cursor({at_micros(5), "GOAL", "a"}, "u1", f);
  CHECK(decode_cursor(text, "u1", f));
  memory_filter reordered = f;
  reordered.keys = std::vector<std::string>{"b", "a", "b"};
  CHECK(decode_cursor(text, "u1", reordered));
  memory_filter other = f;
  other.category.reset();
  for (const auto& [user, filter] : {std::pair{std::string("u2"), f}, std::pair{std::string("u1"), other}}) {
    auto r = decode_cursor(text, user, filter);
    REQUIRE(!r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(r.message() == "after: cursor of another listing (another user, category or keys)");
  }
}

TEST_CASE("every change of one character, truncation or padding is refused") {
  memory_filter f;
  const auto text = encode_cursor({at_micros(123), "FACT", "key"}, "u", f);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t i = 0; i < text.size(); ++i)
    for (char c : alphabet) {
      if (c == text[i]) continue;
      std::string altered = text;
      altered[i] = c;
      auto r = decode_cursor(altered, "u", f);
      REQUIRE_MESSAGE(!r, altered);
      CHECK(r.message().rfind("after: ", 0) == 0);
    }
  for (std::size_t n = 0; n < text.size(); ++n) CHECK(!decode_cursor(text.substr(0, n), "u", f));
  CHECK(!decode_cursor(text + "A", "u", f));
  CHECK(!decode_cursor(text + "=", "u", f));
  CHECK(!decode_cursor(text + "AAAA", "u", f));
}

TEST_CASE("a well-formed cursor naming what no memory can be named is refused") {
  memory_filter f;
  const std::string too_long(257, 'k');
  for (const auto& p : {page_position{at_micros(1), "", "k"}, page_position{at_micros(1), "FACT", too_long},
                        page_position{at_micros(1), std::string("a\0b", 3), "k"},
                        page_position{at_micros(1), "FACT", "\xff\xfe"}}) {
    auto r = decode_cursor(encode_cursor(p, "u", f), "u", f);
    REQUIRE(!r);
    CHECK(r.message() == "after: not a cursor (malformed)");
  }
}
