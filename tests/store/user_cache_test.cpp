// The cache's rules without a database: what is served, what a fill may put back, bounds.
#include "store/invalidation.hpp"
#include "store/user_cache.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace dataloader;
using namespace dataloader::store;
using dataloader::store::detail::user_cache;
using dataloader::store::detail::parse_invalidation;

namespace {

prefetch_result snapshot_with(const std::string& user, int memories, std::int64_t count, const std::string& profile) {
  prefetch_result r;
  r.user_id = user;
  r.profile = profile;
  r.memory_count = count;
  for (int i = 0; i < memories; ++i) r.recent_memories.push_back(memory{user, "FACT", "k" + std::to_string(i), "v", {}, {}});
  return r;
}

// A cache whose listener is listening.
struct serving_cache : user_cache {
  explicit serving_cache(std::size_t capacity, std::chrono::milliseconds ttl = std::chrono::minutes(1))
      : user_cache(capacity, ttl) {
    resume();
  }
};

}  // namespace

TEST_CASE("a disabled cache, or one not listening, serves and keeps nothing") {
  user_cache off(0, std::chrono::minutes(1));
  CHECK_FALSE(off.enabled());
  CHECK_FALSE(off.take_ticket("u").valid());

  user_cache waiting(10, std::chrono::minutes(1));  // enabled, but resume() not yet called
  auto t = waiting.take_ticket("u");
  CHECK_FALSE(t.valid());
  waiting.put_snapshot(t, 20, snapshot_with("u", 1, 1, "p"), pg::lsn{5});
  CHECK_FALSE(waiting.snapshot("u", 20, {}));
  CHECK(waiting.stats().entries == 0);
}

TEST_CASE("a snapshot serves every limit it holds, and positions up to its own") {
  serving_cache c(10);
  {
    auto t = c.take_ticket("u");
    c.put_snapshot(t, 20, snapshot_with("u", 20, 50, "p"), pg::lsn{100});
  }
  auto hit = c.snapshot("u", 5, pg::lsn{100});
  REQUIRE(hit);
  CHECK(hit->value.data->recent_memories.size() == 20);  // the whole snapshot: the caller takes its first 5
  CHECK(hit->value.data->memory_count == 50);
  CHECK(hit->position == pg::lsn{100});
  CHECK_FALSE(c.snapshot("u", 30, {}));             // 50 memories, only 20 held
  CHECK_FALSE(c.snapshot("u", 5, pg::lsn{101}));    // a token beyond what it is known to reflect
  auto profile = c.profile("u", {});
  REQUIRE(profile);
  CHECK(profile->value == "p");
  CHECK(c.stats().hits == 2);
  CHECK(c.stats().misses == 2);

  // A user with fewer memories than the limit read holds them all: any limit is served.
  {
    auto t = c.take_ticket("small");
    c.put_snapshot(t, 20, snapshot_with("small", 3, 3, "q"), pg::lsn{100});
  }
  CHECK(c.snapshot("small", 100, {}));
}

namespace {

struct text_of_snapshot final : snapshot_rendering {
  std::size_t bytes() const noexcept override { return 1000; }
};

}  // namespace

TEST_CASE("a rendering is kept with the snapshot it was made from, and goes with it") {
  serving_cache c(10);
  const auto fill = [&](const std::string& profile) {
    auto t = c.take_ticket("u");
    c.put_snapshot(t, 20, snapshot_with("u", 2, 2, profile), pg::lsn{100});
  };
  fill("p");
  auto first = c.snapshot("u", 5, {});
  REQUIRE(first);
  CHECK_FALSE(first->value.rendering);
  const auto bytes_before = c.stats().bytes;
  auto rendering = std::make_shared<const text_of_snapshot>();
  c.keep_rendering("u", first->value.data.get(), rendering);
  CHECK(c.stats().bytes == bytes_before + 1000);
  auto second = c.snapshot("u", 5, {});
  REQUIRE(second);
  CHECK(second->value.data == first->value.data);
  CHECK(second->value.rendering == rendering);

  // Only the first rendering of a snapshot is kept.
  c.keep_rendering("u", first->value.data.get(), std::make_shared<const text_of_snapshot>());
  CHECK(c.snapshot("u", 5, {})->value.rendering == rendering);

  // A new snapshot starts without one, and a rendering of the old one is not kept for it.
  fill("q");
  auto refilled = c.snapshot("u", 5, {});
  REQUIRE(refilled);
  CHECK_FALSE(refilled->value.rendering);
  CHECK(c.stats().bytes == bytes_before);
  c.keep_rendering("u", first->value.data.get(), rendering);
  CHECK_FALSE(c.snapshot("u", 5, {})->value.rendering);

  // Nor after an invalidation; the holder's own copy lives on.
  c.invalidate("u");
  c.keep_rendering("u", refilled->value.data.get(), rendering);
  CHECK_FALSE(c.snapshot("u", 5, {}));
  CHECK(c.stats().entries == 0);
  CHECK(c.stats().bytes == 0);
  CHECK(first->value.data->profile == "p");
}

TEST_CASE("a fill does not put back data read before an invalidation of its user") {
  serving_cache c(10);
  auto early = c.take_ticket("u");
  auto other = c.take_ticket("v");
  c.invalidate("u");                // the change committed while the read was in flight
  auto late = c.take_ticket("u");   // a read that began after it
  c.put_snapshot(early, 20, snapshot_with("u", 1, 1, "old"), pg::lsn{1});
  CHECK_FALSE(c.snapshot("u", 20, {}));
  CHECK(c.stats().stale_fills == 1);
  c.put_snapshot(other, 20, snapshot_with("v", 1, 1, "v"), pg::lsn{1});
  CHECK(c.snapshot("v", 20, {}));   // another user's fill is unaffected
  c.put_snapshot(late, 20, snapshot_with("u", 1, 1, "new"), pg::lsn{2});
  auto hit = c.snapshot("u", 20, {});
  REQUIRE(hit);
  CHECK(hit->value.data->profile == "new");
}

TEST_CASE("losing the listener drops everything and voids the fills in flight") {
  serving_cache c(10);
  {
    auto t = c.take_ticket("u");
    c.put_profile(t, std::string("p"), pg::lsn{1});
  }
  auto in_flight = c.take_ticket("v");
  c.suspend();
  CHECK_FALSE(c.serving());
  CHECK_FALSE(c.profile("u", {}));
  c.resume();
  c.put_profile(in_flight, std::string("old"), pg::lsn{1});
  CHECK_FALSE(c.profile("v", {}));
  CHECK(c.stats().resyncs == 1);
  CHECK(c.stats().entries == 0);
}

TEST_CASE("entries never exceed the bound, and the least recently used go first") {
  serving_cache c(3);
  for (const char* u : {"a", "b", "c"}) {
    auto t = c.take_ticket(u);
    c.put_profile(t, std::string(u), pg::lsn{1});
  }
  CHECK(c.profile("a", {}));  // a is now the most recently used
  {
    auto t = c.take_ticket("d");
    c.put_profile(t, std::string("d"), pg::lsn{1});
  }
  const auto s = c.stats();
  CHECK(s.entries == 3);
  CHECK(s.bytes > 0);
  CHECK(c.profile("a", {}));
  CHECK_FALSE(c.profile("b", {}));
  CHECK(c.profile("c", {}));
  CHECK(c.profile("d", {}));
}

TEST_CASE("an entry expires after the time to live") {
  serving_cache c(3, std::chrono::milliseconds(20));
  {
    auto t = c.take_ticket("u");
    c.put_profile(t, std::nullopt, pg::lsn{1});
  }
  auto hit = c.profile("u", {});
  REQUIRE(hit);
  CHECK_FALSE(hit->value.has_value());  // "no profile" is cached too
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  CHECK_FALSE(c.profile("u", {}));
}

TEST_CASE("invalidation payloads: users, all, and anything else read as all") {
  auto some = parse_invalidation(R"({"table" : "memories", "users" : ["a", "b,c", "\u00e9"]})");
  CHECK_FALSE(some.all);
  CHECK(some.users == std::vector<std::string>{"a", "b,c", "\xc3\xa9"});
  CHECK(parse_invalidation(R"({"table" : "memories", "all" : true})").all);
  CHECK(parse_invalidation("").all);
  CHECK(parse_invalidation("not json").all);
  CHECK(parse_invalidation(R"({"users" : [1]})").all);
  CHECK(parse_invalidation(R"(["a"])").all);
}
