// The memory store against a real PostgreSQL (label pg). Behaviour tests run with
// coalescing on and off (the N+1 baseline): same results, different statement counts.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <atomic>
#include <random>
#include <thread>

using namespace dataloader;
namespace store = dataloader::store;
namespace asio = boost::asio;
namespace pg = dataloader::pg;

namespace {

using test::strings;

using test::mode;

// GCC 12 cannot keep braced lists in coroutine frames: build inputs here.
std::vector<store::memory_input> items(const std::string& user, int n, const std::string& value_prefix = "v",
                                       const std::string& category = "FACT") {
  std::vector<store::memory_input> out;
  for (int i = 0; i < n; ++i) out.push_back({user, category, "k" + std::to_string(i), value_prefix + std::to_string(i)});
  return out;
}


const pg::statement explain_recent{"test_explain_recent",
    "EXPLAIN SELECT category, key FROM memories WHERE user_id = $1::text ORDER BY updated_at DESC LIMIT 20"};
const pg::statement explain_search{"test_explain_search",
    "EXPLAIN SELECT key FROM memories WHERE user_id = $1::text AND category = $2::text ORDER BY updated_at DESC LIMIT 5"};
const pg::statement bulk{"test_bulk",
    "INSERT INTO memories (user_id, category, key, value) SELECT 'bulk' || (g % 5000), 'FACT', 'k' || g, 'x' "
    "FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING"};
const pg::statement analyze{"test_analyze", "ANALYZE memories"};
const pg::statement poison_fn{"test_poison_fn",
    "CREATE OR REPLACE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.key = 'poison' THEN RAISE EXCEPTION 'poisoned key %', NEW.key; END IF; RETURN NEW; END $$"};
const pg::statement poison_on{"test_poison_on",
    "CREATE OR REPLACE TRIGGER test_poison BEFORE INSERT OR UPDATE ON memories FOR EACH ROW EXECUTE FUNCTION test_poison()"};
const pg::statement poison_off{"test_poison_off", "DROP TRIGGER IF EXISTS test_poison ON memories"};
const pg::statement migrations_count{"test_migrations_count", "SELECT count(*) FROM schema_migrations"};

}  // namespace

TEST_CASE("migrations apply once and are recorded") {
  test::with_store([](pg::connection_pool& pool, store::memory_store&) -> asio::awaitable<void> {
    auto again = co_await store::async_migrate(pool, asio::use_awaitable);
    CHECK(again == 0);
    auto r = co_await test::sql(pool, migrations_count);
    CHECK(r.get<std::int64_t>(0, 0) == static_cast<std::int64_t>(store::migrations().size()));
  });
}

TEST_CASE("two instances migrating at once do not race") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    using namespace boost::asio::experimental::awaitable_operators;
    pg::connection_pool a(ex, test::params(1)), b(ex, test::params(1));
    a.start();
    b.start();
    auto [ra, rb] = co_await (store::async_migrate(a, asio::use_awaitable) && store::async_migrate(b, asio::use_awaitable));
    CHECK(ra >= 0);  // neither threw: both saw the schema complete
    CHECK(rb >= 0);
    CHECK(ra + rb <= static_cast<int>(store::migrations().size()));
    a.close();
    b.close();
  });
}

TEST_CASE("user lookups use the indexes, not a sequential scan of memories") {
  test::with_store([](pg::connection_pool& pool, store::memory_store&) -> asio::awaitable<void> {
    co_await test::sql(pool, bulk);
    co_await test::sql(pool, analyze);
    for (int which = 0; which < 2; ++which) {
      const pg::statement* st = which == 0 ? &explain_recent : &explain_search;
      pg::params p = st == &explain_recent ? pg::params(std::string("bulk7")) : pg::params(std::string("bulk7"), std::string("FACT"));
      auto plan = co_await test::sql(pool, *st, std::move(p));
      std::string text;
      for (std::size_t i = 0; i < plan.rows(); ++i) text += *plan.get<std::string>(i, 0) + "\n";
      CHECK_MESSAGE(text.find("Seq Scan on memories") == std::string::npos, text);
      CHECK_MESSAGE(text.find("Index") != std::string::npos, text);
    }
  });
}

TEST_CASE("profiles of many users come back in order, missing ones as null") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      co_await s.async_put_profile("p1", "first", asio::use_awaitable);
      co_await s.async_put_profile("p3", "third", asio::use_awaitable);
      const auto before = s.stats().queries;
      auto got = co_await s.async_get_profiles(strings("p1", "p2", "p3", "p1"), asio::use_awaitable);
      REQUIRE(got.size() == 4);
      CHECK(got[0] == "first");
      CHECK(!got[1]);
      CHECK(got[2] == "third");
      CHECK(got[3] == "first");
      const auto sent = s.stats().queries - before;
      if (s.options().coalesce) CHECK(sent == 1);
      else CHECK(sent == 4);
    }, mode(coalesce));
  }
}

TEST_CASE("onboarding state round-trips as JSON") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      nlohmann::json state = nlohmann::json::parse(R"({"step": 2, "answers": ["a", "ü"], "done": false})");
      co_await s.async_put_onboarding("o1", state, asio::use_awaitable);
      auto got = co_await s.async_get_onboarding(strings("o1", "o2"), asio::use_awaitable);
      CHECK(got[0] == state);
      CHECK(!got[1]);
    }, mode(coalesce));
  }
}

TEST_CASE("a save with two entries for one key writes the last one") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      const std::string u = std::string("lastwins-") + (s.options().coalesce ? "on" : "off");
      auto batch = items(u, 5);
      batch.push_back({u, "FACT", "k1", "replaced"});  // same key again: the last wins
      CHECK(co_await s.async_save_memories(batch, asio::use_awaitable) == 5);
      store::memory_filter filter{std::nullopt, strings("k1"), 10, std::nullopt};
      auto k1 = (co_await s.async_get_memories(u, std::move(filter), asio::use_awaitable)).memories;
      REQUIRE(k1.size() == 1);
      CHECK(k1[0].value == "replaced");
    }, mode(coalesce));
  }
}

TEST_CASE("recent memories come newest first, with the user's count") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      const std::string u = std::string("recent-") + (s.options().coalesce ? "on" : "off");
      co_await s.async_save_memories(items(u, 5), asio::use_awaitable);
      auto recent = co_await s.async_get_recent_memories(u, 3, asio::use_awaitable);
      CHECK(recent.count == 5);
      REQUIRE(recent.memories.size() == 3);
      CHECK(recent.memories[0].updated_at >= recent.memories[1].updated_at);
      CHECK(recent.memories[1].updated_at >= recent.memories[2].updated_at);
    }, mode(coalesce));
  }
}

TEST_CASE("an updated memory becomes the newest and keeps its creation time") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      const std::string u = std::string("updated-") + (s.options().coalesce ? "on" : "off");
      co_await s.async_save_memories(items(u, 5), asio::use_awaitable);
      co_await s.async_save_memories(items(u, 1, "again"), asio::use_awaitable);
      auto newest = co_await s.async_get_recent_memories(u, 1, asio::use_awaitable);
      REQUIRE(newest.memories.size() == 1);
      CHECK(newest.memories[0].key == "k0");
      CHECK(newest.memories[0].value == "again0");
      CHECK(newest.memories[0].created_at < newest.memories[0].updated_at);
    }, mode(coalesce));
  }
}

TEST_CASE("a user without memories has none and a count of 0") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      auto none = co_await s.async_get_recent_memories(std::string("nobody-") + (s.options().coalesce ? "on" : "off"), 5,
                                                       asio::use_awaitable);
      CHECK(none.count == 0);
      CHECK(none.memories.empty());
    }, mode(coalesce));
  }
}

TEST_CASE("get memories filters by category and keys, with a limit") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      const std::string u = std::string("filter-") + (s.options().coalesce ? "on" : "off");
      auto facts = items(u, 3, "f", "FACT");
      auto goals = items(u, 2, "g", "GOAL");
      co_await s.async_save_memories(facts, asio::use_awaitable);
      co_await s.async_save_memories(goals, asio::use_awaitable);
      store::memory_filter filter2{};

      auto all = (co_await s.async_get_memories(u, std::move(filter2), asio::use_awaitable)).memories;
      CHECK(all.size() == 5);
      store::memory_filter filter3{std::string("GOAL"), std::nullopt, 10, std::nullopt};

      auto only_goals = (co_await s.async_get_memories(u, std::move(filter3), asio::use_awaitable)).memories;
      CHECK(only_goals.size() == 2);
      for (const auto& m : only_goals) CHECK(m.category == "GOAL");
      store::memory_filter filter4{std::nullopt, std::nullopt, 2, std::nullopt};

      auto limited = (co_await s.async_get_memories(u, std::move(filter4), asio::use_awaitable)).memories;
      CHECK(limited.size() == 2);
      store::memory_filter filter5{std::string("FACT"), strings("k0", "k2", "zz"), 10, std::nullopt};

      auto by_key = (co_await s.async_get_memories(u, std::move(filter5), asio::use_awaitable)).memories;
      CHECK(by_key.size() == 2);
    }, mode(coalesce));
  }
}

TEST_CASE("deletes count what they removed, optionally within a category") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      const std::string u = std::string("deleter-") + (s.options().coalesce ? "on" : "off");
      auto facts = items(u, 3, "f", "FACT");
      auto goals = items(u, 3, "g", "GOAL");
      co_await s.async_save_memories(facts, asio::use_awaitable);
      co_await s.async_save_memories(goals, asio::use_awaitable);
      CHECK(co_await s.async_delete_memories(u, strings("k0"), std::string("GOAL"), asio::use_awaitable) == 1);
      CHECK(co_await s.async_delete_memories(u, strings("k1", "missing"), std::nullopt, asio::use_awaitable) == 2);
      auto left = co_await s.async_get_recent_memories(u, 10, asio::use_awaitable);
      CHECK(left.count == 3);
    }, mode(coalesce));
  }
}

TEST_CASE("search returns the top memories of each category in one statement") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      const std::string u = std::string("searcher-") + (s.options().coalesce ? "on" : "off");
      auto facts = items(u, 4, "f", "FACT");
      auto goals = items(u, 1, "g", "GOAL");
      co_await s.async_save_memories(facts, asio::use_awaitable);
      co_await s.async_save_memories(goals, asio::use_awaitable);
      const auto before = s.stats().queries;
      auto found = co_await s.async_search(u, strings("FACT", "GOAL", "INTEREST"), 2, asio::use_awaitable);
      CHECK(s.stats().queries - before == (s.options().coalesce ? 1u : 3u));
      CHECK(found["FACT"].size() == 2);
      CHECK(found["FACT"][0].updated_at >= found["FACT"][1].updated_at);
      CHECK(found["GOAL"].size() == 1);
      CHECK(found["INTEREST"].empty());
    }, mode(coalesce));
  }
}

TEST_CASE("saves from many callers in one tick become one statement (and one read of its position)") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    const auto before = s.stats().queries;
    int done = 0;
    for (int c = 0; c < 20; ++c)
      s.async_save_memories(items("tick-saver" + std::to_string(c), 3), [&](error_code ec, std::int64_t n) {
        CHECK(!ec);
        CHECK(n == 3);
        ++done;
      });
    while (done < 20) co_await test::sleep_for(std::chrono::milliseconds(5));
    CHECK(s.stats().queries - before == 2);
  });
}

TEST_CASE("a coalesced write that fails for one caller commits everyone else's (bisection)") {
  test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    co_await test::sql(pool, poison_fn);
    co_await test::sql(pool, poison_on);
    std::vector<result<std::int64_t>> got(8, result<std::int64_t>(std::int64_t{-1}));
    std::vector<diagnostics> diags(8);
    int done = 0;
    for (int c = 0; c < 8; ++c) {
      auto batch = items("bisect" + std::to_string(c), 2);
      if (c == 5) batch.push_back({"bisect5", "FACT", "poison", "x"});
      s.async_save_memories(batch, diags[c], [&, c](error_code ec, std::int64_t n) {
        got[c] = test::outcome(ec, n, diags[c]);
        ++done;
      });
    }
    while (done < 8) co_await test::sleep_for(std::chrono::milliseconds(5));
    co_await test::sql(pool, poison_off);
    for (int c = 0; c < 8; ++c) {
      CAPTURE(c);
      auto n = co_await test::sql(pool, test::count_user, pg::params("bisect" + std::to_string(c)));
      if (c == 5) {
        CHECK(pg::sqlstate_of(got[c].error()) == "P0001");  // raise_exception, kept through the store
        CHECK(got[c].message().find("poisoned key poison") != std::string::npos);
        CHECK(n.get<std::int64_t>(0, 0) == 0);  // nothing of the failing caller was written
      } else {
        CHECK(got[c].value() == 2);
        CHECK(n.get<std::int64_t>(0, 0) == 2);
      }
    }
    CHECK(s.stats().retried_statements > 0);
  });
}

// Built outside coroutines: GCC 12 miscompiles braced lists inside them.
nlohmann::json onboarding_step(int step) { return nlohmann::json{{"step", step}}; }

TEST_CASE("prefetch of 64 users in one tick, with recent-memory reads among them: one statement, one round trip") {
  test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    for (int u = 0; u < 64; u += 8) {
      const auto user = "pf" + std::to_string(u);
      co_await s.async_put_profile(user, "profile of " + user, asio::use_awaitable);
      co_await s.async_save_memories(items(user, 3), asio::use_awaitable);
    }
    // Onboarding and memories without a profile; a profile with a large text and no memories.
    co_await s.async_put_onboarding("pf9", onboarding_step(9), asio::use_awaitable);
    co_await s.async_save_memories(items("pf9", 5), asio::use_awaitable);
    const std::string large(60 * 1024, 'p');
    co_await s.async_put_profile("pf10", large, asio::use_awaitable);
    co_await test::sleep_for(std::chrono::milliseconds(20));
    co_await test::reset_statement_counts(pool);
    const auto before = pool.stats();
    const auto before_store = s.stats().queries;
    std::vector<store::prefetch_result> got(64);
    std::optional<store::recent_memories> recent;
    int done = 0;
    for (int u = 0; u < 64; ++u)  // limits differ between users: 2 for odd users, 20 for even
      s.async_prefetch("pf" + std::to_string(u), u % 2 ? 2 : 20, [&, u](error_code ec, store::prefetch_result r) {
        CHECK_MESSAGE(!ec, ec.message());
        got[u] = std::move(r);
        ++done;
      });
    s.async_get_recent_memories("pf9", 4, [&](error_code ec, store::recent_memories r) {
      CHECK_MESSAGE(!ec, ec.message());
      if (!ec) recent = std::move(r);
      ++done;
    });
    while (done < 65) co_await test::sleep_for(std::chrono::milliseconds(2));
    const auto after = pool.stats();
    const auto counted = co_await test::statements_counted(pool);
    CHECK(counted == 1);
    CHECK(counted == static_cast<std::int64_t>(s.stats().queries - before_store));
    CHECK(after.round_trips - before.round_trips == 1);
    CHECK(got[8].user_id == "pf8");
    CHECK(got[8].profile == "profile of pf8");
    CHECK(!got[8].onboarding);
    CHECK(got[8].memory_count == 3);
    REQUIRE(got[8].recent_memories.size() == 3);
    for (std::size_t i = 1; i < got[8].recent_memories.size(); ++i)
      CHECK(got[8].recent_memories[i - 1].updated_at >= got[8].recent_memories[i].updated_at);
    CHECK(got[8].recent_memories[0].user_id == "pf8");
    CHECK(!got[9].profile);
    CHECK(got[9].onboarding == onboarding_step(9));
    CHECK(got[9].memory_count == 5);
    CHECK(got[9].recent_memories.size() == 2);  // odd user: limit 2
    CHECK(got[10].profile == large);
    CHECK(got[10].memory_count == 0);
    CHECK(got[10].recent_memories.empty());
    CHECK(!got[11].profile);
    CHECK(got[11].memory_count == 0);
    REQUIRE(recent);
    CHECK(recent->count == 5);
    CHECK(recent->memories.size() == 4);
  });
}

TEST_CASE("queries equals what pg_stat_statements counted, in both modes") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
      co_await test::reset_statement_counts(pool);
      const auto before = s.stats();
      const std::string u = std::string("counted-") + (s.options().coalesce ? "on" : "off");
      co_await s.async_save_memories(items(u, 4), asio::use_awaitable);
      co_await s.async_put_profile(u, "p", asio::use_awaitable);
      co_await s.async_put_onboarding(u, nlohmann::json::object(), asio::use_awaitable);
      co_await s.async_prefetch(u, 10, asio::use_awaitable);
      co_await s.async_get_profiles(strings(u, "x", "y"), asio::use_awaitable);
      co_await s.async_search(u, strings("FACT", "GOAL"), 3, asio::use_awaitable);
      co_await s.async_delete_memories(u, strings("k0", "k1"), std::nullopt, asio::use_awaitable);
      const auto after = s.stats();
      const auto counted = co_await test::statements_counted(pool);
      CHECK(counted == static_cast<std::int64_t>(after.queries - before.queries));
      // naive: 4 saves + 1 + 1 + prefetch 4 + 3 profiles + 2 categories + 2 deletes = 17,
      // and the position of each of the 4 writes
      CHECK(after.naive_queries - before.naive_queries == 21);
      CHECK(after.total_operations - before.total_operations == 7);
      if (!s.options().coalesce) CHECK(after.queries - before.queries == 21);
      else CHECK(after.queries - before.queries < 21);
    }, mode(coalesce));
  }
}

TEST_CASE("a save with one invalid item is refused naming it, and writes nothing") {
  test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    auto batch = items("refused", 3);
    batch[1].key = std::string(257, 'k');
    diagnostics d;
    auto [ec, n0] = co_await s.async_save_memories(batch, d, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == errc::invalid_argument);
    CHECK(d.message() == "memories[1].key: must be 1 to 256 bytes (got 257)");
    auto n = co_await test::sql(pool, test::count_user, pg::params(std::string("refused")));
    CHECK(n.get<std::int64_t>(0, 0) == 0);
  });
}

TEST_CASE("a value with a NUL byte is refused naming its offset") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    auto batch = items("refused-nul", 3);
    batch[2].value = std::string("nul\0here", 8);
    diagnostics d;
    auto [ec, n] = co_await s.async_save_memories(batch, d, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == errc::invalid_argument);
    CHECK(d.message() == "memories[2].value: contains a NUL byte at offset 3");
  });
}

TEST_CASE("a prefetch of an empty user id or an out-of-range limit is refused naming it") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    diagnostics d;
    auto [pe, p] = co_await s.async_prefetch("", 20, d, asio::as_tuple(asio::use_awaitable));
    CHECK(pe == errc::invalid_argument);
    CHECK(d.message() == "user_id: must be 1 to 256 bytes (got 0)");
    std::tie(pe, p) = co_await s.async_prefetch("u", 101, d, asio::as_tuple(asio::use_awaitable));
    CHECK(pe == errc::invalid_argument);
    CHECK(d.message() == "memory_limit: must be between 1 and 100 (got 101)");
  });
}

TEST_CASE("a profile over 64 KiB is refused naming its size") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    diagnostics d;
    auto [ec, done] = co_await s.async_put_profile("u", std::string(64 * 1024 + 1, 'x'), d, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == errc::invalid_argument);
    CHECK(d.message() == "profile: must be at most 65536 bytes (got 65537)");
  });
}

TEST_CASE("an id with invalid UTF-8 is refused naming its position") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    diagnostics d;
    auto [ec, got] = co_await s.async_get_profiles(strings("ok", "bad\xff"), d, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == errc::invalid_argument);
    CHECK(d.message() == "ids[1]: is not valid UTF-8 (at byte offset 3)");
  });
}

namespace {

// Many readers and writers on few users, spread over `stores` (instances of one database).
// Each user has one writer, which writes an increasing version, one write at a time, through
// the instances in turn (so versions commit in order). A reader must see at least the version
// its own instance acknowledged last before the read began, and, when it passes the
// position of the newest write acknowledged anywhere, at least that write's version.
// A prefetch read as the service reads it: from the cache at once when it holds the
// user (try_cached_prefetch), else through the store.
asio::awaitable<std::tuple<error_code, store::prefetch_result>> prefetch_as_served(store::memory_store& s,
                                                                                    std::string user, int limit,
                                                                                    store::consistency& c,
                                                                                    diagnostics& d) {
  if (auto hit = s.try_cached_prefetch(user, limit, c)) {
    std::tuple<error_code, store::prefetch_result> answer;
    std::get<1>(answer) = *hit->snapshot;
    std::get<1>(answer).recent_memories.resize(hit->memories);
    co_return answer;
  }
  co_return co_await s.async_prefetch(std::move(user), limit, c, d, asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> reads_never_go_back(std::vector<store::memory_store*> stores) {
  constexpr int users = 6, writers = users, readers = 24, rounds = 40;
  const std::size_t n = stores.size();
  std::vector<std::vector<int>> acknowledged(n, std::vector<int>(users, 0));  // per instance
  struct token {
    int version = 0;
    pg::lsn position;
  };
  std::vector<token> newest(users);  // anywhere
  std::vector<int> next_version(users, 0);
  int violations = 0, reads = 0, running = writers + readers;
  std::mt19937 rng(7);
  auto ex = co_await asio::this_coro::executor;
  for (int w = 0; w < writers; ++w)
    asio::co_spawn(ex, [&, w]() -> asio::awaitable<void> {
      for (int i = 0; i < rounds; ++i) {
        const int u = w;
        const std::size_t at = static_cast<std::size_t>(w + i) % n;
        const int version = ++next_version[u];
        store::consistency c;
        diagnostics d;
        auto [ec, written] = co_await stores[at]->async_put_profile("ryw" + std::to_string(u), std::to_string(version),
                                                                    c, d, asio::as_tuple(asio::use_awaitable));
        if (ec || !written) continue;
        acknowledged[at][u] = std::max(acknowledged[at][u], version);
        if (version > newest[u].version) newest[u] = token{version, c.position};
      }
      --running;
    }, asio::detached);
  for (int r = 0; r < readers; ++r)
    asio::co_spawn(ex, [&, r]() -> asio::awaitable<void> {
      for (int i = 0; i < rounds; ++i) {
        const int u = static_cast<int>(rng() % users);
        const std::size_t at = static_cast<std::size_t>(r + i) % n;
        const bool with_token = i % 2 == 1;
        const token t = newest[u];
        const int floor = std::max(acknowledged[at][u], with_token ? t.version : 0);
        store::consistency c;
        if (with_token) c.min_position = t.position;
        diagnostics d;
        std::string user = "ryw" + std::to_string(u);
        std::tuple<error_code, store::prefetch_result> answer;
        if (i % 4 < 2) answer = co_await prefetch_as_served(*stores[at], user, 5, c, d);
        else answer = co_await stores[at]->async_prefetch(user, 5, c, d, asio::as_tuple(asio::use_awaitable));
        auto& [ec, got] = answer;
        ++reads;
        const int seen = !ec && got.profile ? std::stoi(*got.profile) : 0;
        if (seen < floor) ++violations;
      }
      --running;
    }, asio::detached);
  while (running > 0) co_await test::sleep_for(std::chrono::milliseconds(10));
  CHECK(reads == readers * rounds);
  CHECK(violations == 0);
  // Quiet now: with a token every instance has the last version, and a second read of it
  // may come from the cache.
  for (int u = 0; u < users; ++u)
    for (auto* s : stores)
      for (int twice = 0; twice < 2; ++twice) {
        store::consistency c;
        c.min_position = newest[u].position;
        diagnostics d;
        auto [ec, got] = co_await s->async_prefetch("ryw" + std::to_string(u), 5, c, d, asio::as_tuple(asio::use_awaitable));
        CHECK_FALSE(ec);
        CHECK(got.profile == std::to_string(newest[u].version));
      }
}

asio::awaitable<void> until_notified(store::memory_store& s, std::uint64_t notifications) {
  co_await test::wait_until([&] { return s.stats().cache.notifications >= notifications; });
  REQUIRE(s.stats().cache.notifications >= notifications);
}

asio::awaitable<void> until_cache_serves(store::memory_store& s) {
  co_await test::wait_until([&] { return s.stats().cache.serving; });
  REQUIRE(s.stats().cache.serving);
}

store::store_options cached() {
  store::store_options o;
  o.cache_entries = 1000;
  return o;
}

}  // namespace

TEST_CASE("reads never see a value older than the last write acknowledged before they began") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    std::vector<store::memory_store*> one{&s};
    co_await reads_never_go_back(one);
  });
}

TEST_CASE("with the cache: reads never go back, on one instance or two, with tokens or without") {
  SUBCASE("one instance") {
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      co_await until_cache_serves(s);
      std::vector<store::memory_store*> one{&s};
      co_await reads_never_go_back(one);
      CHECK(s.stats().cache.hits >= 6);
    }, cached());
  }
  SUBCASE("two instances") {
    test::with_store([](pg::connection_pool& pool, store::memory_store& a) -> asio::awaitable<void> {
      pg::connection_pool pool_b(co_await asio::this_coro::executor, pool.config());
      pool_b.start();
      {
        store::memory_store b(pool_b, cached());
        co_await until_cache_serves(a);
        co_await until_cache_serves(b);
        std::vector<store::memory_store*> two{&a, &b};
        co_await reads_never_go_back(two);
        CHECK(a.stats().cache.hits + b.stats().cache.hits >= 12);
        CHECK(a.stats().cache.notifications > 0);
      }
      pool_b.close();
    }, cached());
  }
}

TEST_CASE("try_cached_prefetch answers at once what the cache holds, and nothing else") {
  SUBCASE("cache off: never") {
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      diagnostics d;
      co_await s.async_prefetch("tc", 5, d, asio::as_tuple(asio::use_awaitable));
      store::consistency c;
      CHECK_FALSE(s.try_cached_prefetch("tc", 5, c));
    });
  }
  SUBCASE("cache on") {
    test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
      co_await until_cache_serves(s);
      const auto notified_before = s.stats().cache.notifications;
      diagnostics d;
      std::vector<store::memory_input> items;
      for (int i = 0; i < 8; ++i) items.push_back({"tc", "FACT", "k" + std::to_string(i), "v" + std::to_string(i)});
      co_await s.async_save_memories(items, d, asio::as_tuple(asio::use_awaitable));
      co_await s.async_put_profile("tc", "one", d, asio::as_tuple(asio::use_awaitable));
      store::consistency c;
      const auto misses = s.stats().cache.misses;
      CHECK_FALSE(s.try_cached_prefetch("tc", 5, c));  // not read yet
      CHECK(s.stats().cache.misses == misses);         // async_prefetch counts the miss, once
      // The two writes' own notifications drop the user when they arrive: fill after them.
      co_await until_notified(s, notified_before + 2);

      store::consistency filled;
      auto [ec, read] = co_await s.async_prefetch("tc", 5, filled, d, asio::as_tuple(asio::use_awaitable));
      REQUIRE_FALSE(ec);
      const auto before = s.stats();
      store::consistency at;
      auto hit = s.try_cached_prefetch("tc", 5, at);
      REQUIRE(hit);
      CHECK(hit->memories == 5);
      CHECK(std::vector<store::memory>(hit->recent_memories().begin(), hit->recent_memories().end()) ==
            read.recent_memories);
      CHECK(hit->snapshot->profile == "one");
      CHECK(hit->snapshot->memory_count == 8);
      CHECK(at.position == filled.position);
      const auto after = s.stats();
      CHECK(after.cache.hits == before.cache.hits + 1);
      CHECK(after.total_operations == before.total_operations + 1);
      CHECK(after.naive_queries == before.naive_queries + 4);
      CHECK(after.queries == before.queries);

      store::consistency beyond;
      beyond.min_position = pg::lsn{filled.position.value + 1};
      CHECK_FALSE(s.try_cached_prefetch("tc", 5, beyond));  // a token the entry may not reflect
      CHECK_FALSE(s.try_cached_prefetch("tc", 0, c));       // what async_prefetch refuses
      CHECK_FALSE(s.try_cached_prefetch("tc", 101, c));
      CHECK_FALSE(s.try_cached_prefetch("other", 5, c));

      const auto notified = s.stats().cache.notifications;
      co_await s.async_put_profile("tc", "two", d, asio::as_tuple(asio::use_awaitable));
      CHECK_FALSE(s.try_cached_prefetch("tc", 5, c));  // dropped before the write was acknowledged
      co_await until_notified(s, notified + 1);
      co_await s.async_prefetch("tc", 5, d, asio::as_tuple(asio::use_awaitable));
      auto again = s.try_cached_prefetch("tc", 5, c);
      REQUIRE(again);
      CHECK(again->snapshot->profile == "two");
      CHECK(hit->snapshot->profile == "one");  // a snapshot handed out never changes
    }, cached());
  }
}

TEST_CASE("try_cached_prefetch from other threads never answers older than an acknowledged write") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    co_await until_cache_serves(s);
    std::atomic<int> acknowledged{0};
    std::atomic<bool> done{false};
    std::atomic<int> hits{0}, stale{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t)
      readers.emplace_back([&] {
        while (!done.load()) {
          const int floor = acknowledged.load();
          store::consistency c;
          if (auto hit = s.try_cached_prefetch("xt", 5, c)) {
            ++hits;
            if (!hit->snapshot->profile || std::stoi(*hit->snapshot->profile) < floor) ++stale;
          }
        }
      });
    diagnostics d;
    for (int version = 1; version <= 150; ++version) {
      auto [ec, ok] = co_await s.async_put_profile("xt", std::to_string(version), d, asio::as_tuple(asio::use_awaitable));
      REQUIRE_FALSE(ec);
      acknowledged = version;
      for (int i = 0; i < 2; ++i) co_await s.async_prefetch("xt", 5, d, asio::as_tuple(asio::use_awaitable));
    }
    done = true;
    for (auto& r : readers) r.join();
    CHECK(stale.load() == 0);
    CHECK(hits.load() > 0);
  }, cached());
}
