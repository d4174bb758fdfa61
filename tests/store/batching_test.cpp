// Smart batching against a real PostgreSQL (label pg): while the pool's only connection
// is saturated (a slow statement executing and one batch sent behind it), prefetches
// from later ticks join one batch; with the connection free a prefetch goes at once.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace dataloader;
namespace store = dataloader::store;
namespace asio = boost::asio;
namespace pg = dataloader::pg;

namespace {

const pg::statement slow{"batching_slow", "SELECT pg_sleep(0.3)"};

// GCC 12 cannot keep braced lists in coroutine frames: build inputs here.
std::vector<store::memory_input> one_memory() { return {{"sb-user-0", "FACT", "k", "v"}}; }

// Prefetches `ticks` x 4 users, one group of 4 per tick, while a slow statement occupies
// the pool's single connection. Returns the statements the store sent for them.
asio::awaitable<std::uint64_t> prefetch_behind_slow_statement(pg::connection_pool& pool, store::memory_store& s,
                                                              int ticks) {
  co_await s.async_save_memories(one_memory(), asio::use_awaitable);
  bool slow_done = false;
  pool.async_query(slow, {}, {}, [&](error_code ec, pg::result) { slow_done = !ec; });
  co_await test::yield();
  CHECK_FALSE(pool.saturated());  // one round trip in flight: a batch may still queue behind it
  const auto before = s.stats().queries;
  int answered = 0;
  for (int t = 0; t < ticks; ++t) {
    for (int i = 0; i < 4; ++i)
      s.async_prefetch("sb-user-" + std::to_string(t * 4 + i), 20, [&, t, i](error_code ec, store::prefetch_result r) {
        CHECK(!ec);
        CHECK(r.memory_count == (t == 0 && i == 0 ? 1 : 0));
        ++answered;
      });
    co_await test::sleep_for(std::chrono::milliseconds(20));  // the next group comes in a later tick
  }
  while (answered < ticks * 4 || !slow_done) co_await test::sleep_for(std::chrono::milliseconds(5));
  co_return s.stats().queries - before;
}

}  // namespace

TEST_CASE("smart batching: prefetches from several ticks wait together while the only connection is saturated") {
  test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    // The first tick's batch is sent behind the slow statement; the next four gather.
    CHECK(co_await prefetch_behind_slow_statement(pool, s, 5) == 2);
    // With the connection free again, a lone prefetch is sent at once: one statement.
    CHECK_FALSE(pool.saturated());
    const auto before = s.stats().queries;
    auto r = co_await s.async_prefetch("sb-user-0", 20, asio::use_awaitable);
    CHECK(r.memory_count == 1);
    CHECK(s.stats().queries - before == 1);
  }, {}, 1);
}

TEST_CASE("smart batching off: each tick's prefetches are their own statement, queued behind the busy connection") {
  store::store_options o;
  o.smart_batching = false;
  test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    CHECK(co_await prefetch_behind_slow_statement(pool, s, 5) == 5);
  }, o, 1);
}
