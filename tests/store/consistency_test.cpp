// Positions in the write-ahead log (store/consistency.hpp) against a real PostgreSQL: what
// a write's position covers, what a read given a min_position sees, and the refusal of a
// position from the future. Two stores on two pools stand for two service instances.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/steady_timer.hpp>

using namespace dataloader;
namespace store = dataloader::store;
namespace asio = boost::asio;
namespace pg = dataloader::pg;

namespace {

const pg::statement insert_position{"test_insert_position", "SELECT pg_current_wal_insert_lsn()::text"};

asio::awaitable<pg::lsn> primary_now(pg::connection_pool& pool) {
  diagnostics d;
  auto [ec, r] = co_await pool.async_query(insert_position, {}, {}, d, asio::as_tuple(asio::use_awaitable));
  if (ec) throw std::runtime_error(d.message());
  co_return *pg::parse_lsn(*r.get<std::string>(0, 0));
}

asio::awaitable<void> pause_1ms() {
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
  co_await t.async_wait(asio::use_awaitable);
}

using test::mode;

// GCC 12 cannot keep braced lists in coroutine frames: build inputs here.
std::vector<std::string> just(const std::string& s) { return std::vector<std::string>(1, s); }

std::vector<store::memory_input> one_item(const std::string& user, const std::string& value) {
  return {store::memory_input{user, "FACT", "k", value}};
}

}  // namespace

TEST_CASE("a write's position is at or after its commit, and a read at that position on another instance sees it") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store(
        [&](pg::connection_pool& pool, store::memory_store& a) -> asio::awaitable<void> {
          // Instance B: a store of its own on a pool of its own.
          pg::connection_pool pool_b(co_await asio::this_coro::executor, test::params(2));
          pool_b.start();
          store::memory_store b(pool_b, mode(coalesce));
          const std::string user = "pos-" + std::to_string(coalesce);
          diagnostics d;

          // B has read the old value, so it would have something to serve from.
          auto [e0, r0] = co_await a.async_put_profile(user, "old", asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e0);
          store::consistency seen;
          auto [e1, old] = co_await b.async_prefetch(user, 5, seen, d, asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e1);
          CHECK(old.profile == "old");

          const pg::lsn before = co_await primary_now(pool);
          store::consistency wrote;
          auto [e2, done] = co_await a.async_put_profile(user, "new", wrote, d, asio::as_tuple(asio::use_awaitable));
          REQUIRE_MESSAGE(!e2, d.message());
          const pg::lsn after = co_await primary_now(pool);
          CHECK(wrote.position > before);   // the commit record lies after `before`
          CHECK(wrote.position <= after);

          // Through B with A's position: the new value, and a position no older.
          store::consistency at;
          at.min_position = wrote.position;
          auto [e3, now] = co_await b.async_prefetch(user, 5, at, d, asio::as_tuple(asio::use_awaitable));
          REQUIRE_MESSAGE(!e3, d.message());
          CHECK(now.profile == "new");
          CHECK(at.position >= wrote.position);

          // Every read kind honours it.
          store::consistency p1 = at, p2 = at, p3 = at, p4 = at, p5 = at;
          const auto ids = just(user);
          const auto keys = just("k");
          const auto categories = just("FACT");
          auto [e4, profiles] = co_await b.async_get_profiles(ids, p1, d,
                                                              asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e4);
          CHECK(profiles.at(0) == "new");
          auto [e5, recent] = co_await b.async_get_recent_memories(user, 3, p2, d, asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e5);
          auto [e6, onboarding] = co_await b.async_get_onboarding(ids, p3, d,
                                                                  asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e6);
          auto [e7, listed] = co_await b.async_get_memories(user, store::memory_filter{}, p4, d,
                                                            asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e7);
          auto [e8, found] = co_await b.async_search(user, categories, 3, p5, d,
                                                     asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e8);
          CHECK(p1.position >= wrote.position);
          CHECK(p2.position >= wrote.position);
          CHECK(p3.position >= wrote.position);
          CHECK(p4.position >= wrote.position);
          CHECK(p5.position >= wrote.position);

          // Saves and deletes have positions too, each past the one before.
          store::consistency saved, deleted;
          auto [e9, n] = co_await a.async_save_memories(one_item(user, "m"), saved, d, asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e9);
          CHECK(saved.position > wrote.position);
          auto [e10, m] = co_await a.async_delete_memories(user, keys, std::nullopt, deleted, d,
                                                           asio::as_tuple(asio::use_awaitable));
          REQUIRE(!e10);
          CHECK(m == 1);
          CHECK(deleted.position > saved.position);
          pool_b.close();
        },
        mode(coalesce));
  }
}

TEST_CASE("writes of one tick share a group, and each caller's position covers its own write") {
  test::with_store([&](pg::connection_pool& pool, store::memory_store& a) -> asio::awaitable<void> {
    pg::connection_pool pool_b(co_await asio::this_coro::executor, test::params(2));
    pool_b.start();
    store::memory_store b(pool_b);
    constexpr int writers = 50;
    std::vector<store::consistency> positions(writers);
    std::vector<diagnostics> ds(writers);
    int done = 0;
    for (int i = 0; i < writers; ++i)
      a.async_put_profile("tick-" + std::to_string(i), "v" + std::to_string(i), positions[i], ds[i],
                          [&](error_code ec, bool) {
                            CHECK_MESSAGE(!ec, ec.message());
                            ++done;
                          });
    while (done < writers) co_await pause_1ms();
    for (int i = 0; i < writers; ++i) {
      store::consistency at;
      at.min_position = positions[i].position;
      diagnostics d;
      const auto ids = just("tick-" + std::to_string(i));
      auto [ec, r] = co_await b.async_get_profiles(ids, at, d,
                                                   asio::as_tuple(asio::use_awaitable));
      REQUIRE(!ec);
      CHECK(r.at(0) == "v" + std::to_string(i));
    }
    (void)pool;
    pool_b.close();
  });
}

TEST_CASE("a min_position beyond the primary's is refused, naming it, and 0/0 asks for nothing") {
  test::with_store([&](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    const pg::lsn now = co_await primary_now(pool);
    store::consistency future;
    future.min_position.value = now.value + (std::uint64_t{1} << 40);
    diagnostics d;
    auto [ec, r] = co_await s.async_prefetch("future-1", 5, future, d, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == errc::invalid_argument);
    CHECK(d.message().starts_with("min_position: " + pg::to_string(future.min_position) + " is beyond"));

    store::consistency none;
    auto [ec2, r2] = co_await s.async_prefetch("future-1", 5, none, d, asio::as_tuple(asio::use_awaitable));
    CHECK(!ec2);
    const pg::lsn later = co_await primary_now(pool);
    CHECK(none.position <= later);

    // The primary's own current position is not from the future.
    store::consistency current;
    current.min_position = co_await primary_now(pool);
    const auto ids = just("future-1");
    auto [ec3, r3] = co_await s.async_get_profiles(ids, current, d,
                                                   asio::as_tuple(asio::use_awaitable));
    CHECK_MESSAGE(!ec3, d.message());
    CHECK(current.position >= current.min_position);
  });
}
