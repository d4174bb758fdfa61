// The schema under the store (label pg): a database made by an older schema upgrades in
// place with the same answers, and the prefetch's memory count, read from the page when
// the page is not full, never differs from count(*).
#include "support.hpp"

#include <doctest/doctest.h>

#include <random>

#include <unistd.h>

using namespace dataloader;
namespace store = dataloader::store;
namespace asio = boost::asio;
namespace pg = dataloader::pg;

namespace {

const pg::statement collations{"schema_collations",
    "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name IN ('memories', 'profiles', 'onboarding') AND column_name IN ('user_id', 'category', 'key') "
    "AND collation_name = 'C'"};
const pg::statement key_statistics{"schema_key_statistics",
    "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND attname = 'user_id' "
    "AND tablename IN ('memories', 'profiles', 'onboarding')"};
const pg::statement hash_indexes{"schema_hash_indexes",
    "SELECT count(*) FROM pg_indexes WHERE indexname IN ('profiles_user_hash', 'onboarding_user_hash') "
    "AND indexdef LIKE '%USING hash%'"};

// Everything the store answers about one user, as one comparable value.
struct user_answers {
  store::prefetch_result prefetch_full;   // limit 100: every memory
  store::prefetch_result prefetch_short;  // limit 3
  std::vector<store::memory> by_category;
  store::search_results search;
  std::optional<std::string> profile;
  bool operator==(const user_answers& o) const {
    auto same = [](const store::prefetch_result& a, const store::prefetch_result& b) {
      return a.user_id == b.user_id && a.profile == b.profile && a.recent_memories == b.recent_memories &&
             a.onboarding == b.onboarding && a.memory_count == b.memory_count;
    };
    return same(prefetch_full, o.prefetch_full) && same(prefetch_short, o.prefetch_short) &&
           by_category == o.by_category && search == o.search && profile == o.profile;
  }
};

asio::awaitable<user_answers> answers(store::memory_store& s, const std::string& user) {
  user_answers a;
  a.prefetch_full = co_await s.async_prefetch(user, 100, asio::use_awaitable);
  a.prefetch_short = co_await s.async_prefetch(user, 3, asio::use_awaitable);
  store::memory_filter f;
  f.category = "GOAL";
  a.by_category = (co_await s.async_get_memories(user, f, asio::use_awaitable)).memories;
  std::vector<std::string> categories{"FACT", "GOAL", "NONE"};
  a.search = co_await s.async_search(user, categories, 2, asio::use_awaitable);
  std::vector<std::string> ids{user};
  auto profiles = co_await s.async_get_profiles(ids, asio::use_awaitable);
  a.profile = profiles.at(0);
  co_return a;
}

std::vector<store::memory_input> memories_of(const std::string& user, int n) {
  static const char* categories[] = {"FACT", "GOAL", "INTEREST", "Zeta", "alpha", "émoji 🙂"};
  std::vector<store::memory_input> out;
  for (int i = 0; i < n; ++i)
    out.push_back({user, categories[i % 6], "key " + std::to_string(i) + (i % 2 ? "ü" : "B"), "value " + std::to_string(i)});
  return out;
}

}  // namespace

TEST_CASE("a database at schema version 2 with data upgrades in place and answers the same") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    const std::string db = "dataloader_upgrade_" + std::to_string(::getpid());
    const pg::statement drop_db{"schema_drop_db", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"};
    const pg::statement create_db{"schema_create_db", "CREATE DATABASE " + db};
    {
      pg::connection_pool admin(ex, test::params(1));
      admin.start();
      co_await test::sql(admin, drop_db);
      co_await test::sql(admin, create_db);
      admin.close();
    }
    pg::pool_params p = test::params(2);
    p.conninfo += (p.conninfo.find('?') == std::string::npos ? "?dbname=" : "&dbname=") + db;
    {
      pg::connection_pool pool(ex, p);
      pool.start();
      auto old = co_await store::detail::migrate(pool, 2);
      REQUIRE_MESSAGE(old.has_value(), old.message());
      CHECK(*old == 2);
      CHECK((co_await test::sql(pool, collations)).get<std::int64_t>(0, 0) == 0);
      std::vector<std::string> users{"old user", "Alpha", "beta", "üser"};
      std::map<std::string, user_answers> before;
      {
        dataloader::loader_registry registry;
        store::memory_store s(pool, {}, &registry);
        for (std::size_t i = 0; i < users.size(); ++i) {
          co_await s.async_save_memories(memories_of(users[i], 4 + 3 * static_cast<int>(i)), asio::use_awaitable);
          co_await s.async_put_profile(users[i], "profile of " + users[i], asio::use_awaitable);
          nlohmann::json state = {{"step", i}};
          co_await s.async_put_onboarding(users[i], state, asio::use_awaitable);
        }
        for (const auto& u : users) before[u] = co_await answers(s, u);
      }
      auto upgraded = co_await store::async_migrate(pool, asio::use_awaitable);
      CHECK(upgraded == static_cast<int>(store::migrations().size()) - 2);
      CHECK((co_await test::sql(pool, collations)).get<std::int64_t>(0, 0) == 5);
      CHECK((co_await test::sql(pool, hash_indexes)).get<std::int64_t>(0, 0) == 2);
      // The type change dropped the columns' statistics; the migration gathers them again.
      CHECK((co_await test::sql(pool, key_statistics)).get<std::int64_t>(0, 0) == 3);
      {
        dataloader::loader_registry registry;
        store::memory_store s(pool, {}, &registry);
        for (const auto& u : users) {
          CAPTURE(u);
          auto after = co_await answers(s, u);
          CHECK(after == before[u]);
          CHECK(after.prefetch_full.memory_count == static_cast<std::int64_t>(after.prefetch_full.recent_memories.size()));
        }
        // And it keeps working as a store: writes after the upgrade read back.
        co_await s.async_save_memories(memories_of("new user", 5), asio::use_awaitable);
        auto fresh = co_await s.async_prefetch("new user", 20, asio::use_awaitable);
        CHECK(fresh.memory_count == 5);
      }
      pool.close();
    }
    pg::connection_pool admin(ex, test::params(1));
    admin.start();
    co_await test::sql(admin, drop_db);
    admin.close();
  });
}

TEST_CASE("the prefetch's memory count equals count(*) below, at and above the limit, after random saves and deletes") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    store::store_options o;
    o.coalesce = coalesce;
    test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
      std::mt19937 rng(20261128);
      const std::string prefix = s.options().coalesce ? "count-on-" : "count-off-";
      std::vector<std::string> users;
      for (int u = 0; u < 6; ++u) users.push_back(prefix + std::to_string(u));
      for (int round = 0; round < 8; ++round) {
        for (const auto& user : users) {
          std::vector<store::memory_input> saves;
          const int n = static_cast<int>(rng() % 9);
          for (int i = 0; i < n; ++i)
            saves.push_back({user, rng() % 2 ? "FACT" : "GOAL", "k" + std::to_string(rng() % 14), "v" + std::to_string(round)});
          if (!saves.empty()) co_await s.async_save_memories(std::move(saves), asio::use_awaitable);
          std::vector<std::string> gone;
          for (int i = static_cast<int>(rng() % 4); i > 0; --i) gone.push_back("k" + std::to_string(rng() % 14));
          if (!gone.empty()) co_await s.async_delete_memories(user, std::move(gone), std::nullopt, asio::use_awaitable);
        }
        for (const auto& user : users) {
          const auto counted = *(co_await test::sql(pool, test::count_user, pg::params(user))).get<std::int64_t>(0, 0);
          // Limits below, at and above the count: the page full, exactly full, not full.
          for (int limit : {1, std::max<int>(1, static_cast<int>(counted)), static_cast<int>(counted) + 1, 100}) {
            CAPTURE(user);
            CAPTURE(limit);
            auto p = co_await s.async_prefetch(user, limit, asio::use_awaitable);
            CHECK(p.memory_count == counted);
            CHECK(static_cast<std::int64_t>(p.recent_memories.size()) == std::min<std::int64_t>(counted, limit));
          }
        }
      }
    }, o);
  }
}
