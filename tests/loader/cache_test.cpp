// Cache modes, prime and clear.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace dataloader;
namespace asio = boost::asio;

namespace {
loader_options cache(cache_mode mode, std::size_t max_entries = 10'000,
                     std::chrono::steady_clock::duration ttl = {}) {
  loader_options o;
  o.cache = mode;
  o.cache_max_entries = max_entries;
  o.cache_ttl = ttl;
  return o;
}
}  // namespace

TEST_CASE("cache off sends every sequential load again") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls});
    co_await l.load(1);
    co_await l.load(1);
  });
  CHECK(calls.size() == 2);
}

TEST_CASE("unbounded cache answers repeated loads without a batch") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls}, cache(cache_mode::unbounded));
    CHECK(co_await l.load(1) == 10);
    CHECK(co_await l.load(1) == 10);
    std::vector<int> keys{1, 2};
    auto r = co_await l.load_many(keys);
    CHECK(r[0].value() == 10);
    CHECK(r[1].value() == 20);
    CHECK(l.stats().cache_hits == 2);
  });
  CHECK(calls == std::vector<std::vector<int>>{{1}, {2}});
}

TEST_CASE("a cache hit on the loader's thread resumes within the same tick, and async_load's hit is posted") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls}, cache(cache_mode::unbounded));
    l.prime(5, 50);
    bool other_job_ran = false;
    asio::post(ex, [&] { other_job_ran = true; });
    for (int i = 0; i < 3; ++i) CHECK(co_await l.load(5) == 50);
    CHECK_FALSE(other_job_ran);  // no trip through the executor's queue
    bool completed = false;
    l.async_load(5, [&](error_code ec, int v) { completed = !ec && v == 50; });
    CHECK_FALSE(completed);  // a handler is never invoked from its initiation
    co_await test::yield();
    CHECK(completed);
    CHECK(other_job_ran);
    CHECK(l.stats().loads == 4);
    CHECK(l.stats().cache_hits == 4);
    CHECK(calls.empty());
  });
}

TEST_CASE("errors are not cached") {
  int calls = 0;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, [&](std::span<const int> keys) {
      ++calls;
      std::vector<result<int>> out;
      for (std::size_t i = 0; i < keys.size(); ++i)
        out.emplace_back(failure{errc::batch_failed, "transient"});
      return out;
    }, cache(cache_mode::unbounded));
    for (int i = 0; i < 2; ++i) {
      auto [ec, v] = co_await l.async_load(1, asio::as_tuple(asio::use_awaitable));
      CHECK(ec == errc::batch_failed);
    }
  });
  CHECK(calls == 2);
}

TEST_CASE("lru cache evicts the least recently used key") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls}, cache(cache_mode::lru, 2));
    co_await l.load(1);
    co_await l.load(2);
    co_await l.load(1);  // hit: 1 is now most recent
    co_await l.load(3);  // evicts 2
    co_await l.load(1);  // hit
    co_await l.load(2);  // miss
  });
  CHECK(calls == std::vector<std::vector<int>>{{1}, {2}, {3}, {2}});
}

TEST_CASE("cached values expire after the ttl") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls},
                       cache(cache_mode::lru, 100, std::chrono::milliseconds(30)));
    co_await l.load(1);
    co_await l.load(1);  // hit
    co_await test::sleep_for(std::chrono::milliseconds(60));
    co_await l.load(1);  // expired
  });
  CHECK(calls.size() == 2);
}

TEST_CASE("prime adds a value without overwriting one") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls}, cache(cache_mode::unbounded));
    l.prime(1, 111);
    CHECK(co_await l.load(1) == 111);
    l.prime(1, 222);  // already cached: no change
    CHECK(co_await l.load(1) == 111);
    l.clear(1);
    l.prime(1, 333);
    CHECK(co_await l.load(1) == 333);
  });
  CHECK(calls.empty());
}

TEST_CASE("prime has no effect with the cache off") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls});
    l.prime(1, 111);
    CHECK(co_await l.load(1) == 10);
  });
  CHECK(calls.size() == 1);
}

TEST_CASE("clear forgets one cached key") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls}, cache(cache_mode::unbounded));
    std::vector<int> keys{1, 2};
    co_await l.load_many(keys);
    l.clear(1);
    co_await l.load_many(keys);
  });
  CHECK(calls == std::vector<std::vector<int>>{{1, 2}, {1}});
}

TEST_CASE("clear_all forgets every key and detaches batches in flight") {
  asio::io_context io;
  test::held_batches held;
  loader<int, int> l(io.get_executor(), held.function(), cache(cache_mode::unbounded));
  int old_value = 0, new_value = 0;
  l.async_load(1, [&](error_code, int v) { old_value = v; });
  test::step(io);
  l.clear_all();
  l.async_load(1, [&](error_code, int v) { new_value = v; });
  test::step(io);
  REQUIRE(held.calls.size() == 2);
  held.answer(0, 10);
  held.answer(1, 100);
  test::finish(io);
  CHECK(old_value == 10);
  CHECK(new_value == 100);
  // The detached batch's result was not cached: the fresh one was.
  int cached = 0;
  l.async_load(1, [&](error_code, int v) { cached = v; });
  test::finish(io);
  CHECK(cached == 100);
  CHECK(held.calls.size() == 2);
}

TEST_CASE("a batch detached by clear does not overwrite the cache") {
  asio::io_context io;
  test::held_batches held;
  loader<int, int> l(io.get_executor(), held.function(), cache(cache_mode::unbounded));
  l.async_load(1, [](error_code, int) {});
  test::step(io);
  l.clear(1);
  l.prime(1, 999);  // the write's value
  held.answer(0, 10);  // old read lands afterwards
  test::finish(io);
  int v = 0;
  l.async_load(1, [&](error_code, int x) { v = x; });
  test::finish(io);
  CHECK(v == 999);
}
