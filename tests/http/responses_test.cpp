// A cached snapshot's rendered prefetch answer against the answer rendered directly.
#include "http/responses.hpp"

#include <doctest/doctest.h>

using dataloader::http::detail::prefetch_body;
using dataloader::http::detail::prefetch_text;
using dataloader::store::memory;
using dataloader::store::prefetch_result;
using json = nlohmann::json;

namespace {

prefetch_result snapshot_with(std::size_t memories, bool with_profile) {
  prefetch_result r;
  r.user_id = "user \"7\" ✓";
  if (with_profile) {
    r.profile = "line\nbreak, \\ and \x01";
    r.onboarding = json::parse(R"({"step": 2, "done": [true, null], "é": "x"})");
  }
  for (std::size_t i = 0; i < memories; ++i) {
    const auto t = dataloader::timestamp{std::chrono::microseconds(1'700'000'000'000'000LL + static_cast<long long>(i))};
    r.recent_memories.push_back(memory{r.user_id, "FACT", "key " + std::to_string(i), "value \"" + std::to_string(i) + "\"",
                                       t, t + std::chrono::seconds(i)});
  }
  r.memory_count = static_cast<std::int64_t>(memories) + 5;  // the snapshot holds the newest only
  return r;
}

}  // namespace

TEST_CASE("a snapshot's rendered text answers every limit exactly as the answer rendered directly") {
  for (const std::size_t size : {0u, 1u, 3u, 12u}) {
    for (const bool with_profile : {false, true}) {
      const auto r = snapshot_with(size, with_profile);
      const prefetch_text text(r);
      for (std::size_t n = 0; n <= size; ++n) {
        CAPTURE(size);
        CAPTURE(n);
        prefetch_result first = r;
        first.recent_memories.resize(n);
        const auto body = text.body(n);
        CHECK(body == prefetch_body(first));
        const auto parsed = json::parse(body);
        CHECK(parsed["recent_memories"].size() == n);
        CHECK(parsed["memory_count"] == r.memory_count);
        CHECK(parsed["user_id"] == r.user_id);
        CHECK(parsed["profile"] == (with_profile ? json(*r.profile) : json(nullptr)));
        CHECK(parsed["onboarding"] == (with_profile ? *r.onboarding : json(nullptr)));
        for (std::size_t i = 0; i < n; ++i) CHECK(parsed["recent_memories"][i]["value"] == r.recent_memories[i].value);
      }
      CHECK(text.bytes() >= text.body(size).size());
    }
  }
}
