// UTF-8 checks and RFC 3339 timestamps (dataloader/text.hpp), shared by every layer.
#include "dataloader/text.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>
#include <vector>

using namespace dataloader;

TEST_CASE("text with a NUL byte or invalid UTF-8 is refused with the reason") {
  CHECK(text_problem("plain") == "");
  CHECK(text_problem("héllo ✓ 𝄞") == "");
  CHECK(text_problem(std::string("a\0b", 3)) == "contains a NUL byte at offset 1");
  CHECK(text_problem("ab\xff") == "is not valid UTF-8 (at byte offset 2)");
  CHECK(text_problem("\xc3") == "is not valid UTF-8 (at byte offset 0)");
  CHECK(text_problem("\xed\xa0\x80") != "");  // a UTF-16 surrogate
  CHECK(text_problem("\xc0\xaf") != "");      // overlong
}

TEST_CASE("timestamps parse PostgreSQL's ISO output with any offset and print RFC 3339") {
  auto t = parse_timestamp("2026-11-25 12:34:56.123456+00");
  REQUIRE(t);
  CHECK(format_rfc3339(*t) == "2026-11-25T12:34:56.123456Z");
  CHECK(format_rfc3339(*parse_timestamp("2026-11-25 14:34:56+02")) == "2026-11-25T12:34:56.000000Z");
  CHECK(format_rfc3339(*parse_timestamp("2026-11-25 07:04:56.5-05:30")) == "2026-11-25T12:34:56.500000Z");
  CHECK(format_rfc3339(*parse_timestamp("2026-11-25T12:34:56Z")) == "2026-11-25T12:34:56.000000Z");
  CHECK(!parse_timestamp("2026-13-01 00:00:00+00"));
  CHECK(!parse_timestamp("yesterday"));
}

TEST_CASE("RFC 3339 output agrees with gmtime over the range a timestamp holds (1678 to 2262)") {
  // The reference: the C library's calendar, printed the slow way.
  auto reference = [](timestamp t) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    auto secs = us / 1'000'000, frac = us % 1'000'000;
    if (frac < 0) frac += 1'000'000, --secs;
    const std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
    return std::string(buf);
  };
  std::mt19937_64 rng(7);
  // system_clock counts nanoseconds in 64 bits here: +-292 years around 1970.
  const std::int64_t lo = -9'000'000'000'000'000;  // 1684-10-22
  const std::int64_t hi = 9'000'000'000'000'000;   // 2255-03-14
  std::uniform_int_distribution<std::int64_t> any(lo, hi);
  std::vector<std::int64_t> cases{0, -1, 1, 951'782'400'000'000 /* 2000-02-29 */, 4'107'542'399'999'999, lo, hi};
  for (int i = 0; i < 20'000; ++i) cases.push_back(any(rng));
  for (auto us : cases) {
    const timestamp t{std::chrono::microseconds(us)};
    CAPTURE(us);
    CHECK(format_rfc3339(t) == reference(t));
  }
}

TEST_CASE("timestamps the system clock cannot hold are refused, not wrapped") {
  CHECK(!parse_timestamp("2626-11-25T12:34:56Z"));  // found by fuzzing: overflowed
  CHECK(!parse_timestamp("9999-12-31 23:59:59.999999+00"));
  CHECK(!parse_timestamp("1000-01-01 00:00:00+00"));
  CHECK(parse_timestamp("2262-01-01 00:00:00+00"));
  CHECK(parse_timestamp("1678-01-01 00:00:00+00"));
}
