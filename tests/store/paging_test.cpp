// Keyset paging of memory listings against a real PostgreSQL (label pg): pages walk a
// listing in order, each memory once, through ties of updated_at; cursors of another
// listing or altered ones are refused naming `after`; pages of many users in one tick are
// one statement; and while writes and deletes run between and alongside the pages, no
// memory comes twice and none that stayed unchanged is skipped.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <map>
#include <random>
#include <set>
#include <tuple>

using namespace dataloader;
namespace store = dataloader::store;
namespace asio = boost::asio;
namespace pg = dataloader::pg;

namespace {

using test::strings;

using test::mode;

std::vector<int> sizes() { return {1, 5, 7, 52, 53}; }

std::vector<store::memory_input> items(const std::string& user, int first, int n) {
  static const char* categories[] = {"FACT", "GOAL", "INTEREST", "EXPERIENCE", "PREFERENCE"};
  std::vector<store::memory_input> out;
  for (int i = first; i < first + n; ++i)
    out.push_back({user, categories[i % 5], "k" + std::to_string(i), "v" + std::to_string(i)});
  return out;
}

// Twelve memories sharing one instant, so that a walk crosses ties of updated_at.
const pg::statement same_instant{"test_same_instant",
    "INSERT INTO memories (user_id, category, key, value, created_at, updated_at) "
    "SELECT $1::text, (ARRAY['B', 'A', 'C'])[1 + g % 3], 't' || g, 'tie', now(), '2026-01-01T00:00:00Z' "
    "FROM generate_series(1, 12) g"};


// Tests start from an empty listing, so that they can run again on the same database.
const pg::statement forget_user{"test_forget_user", "DELETE FROM memories WHERE user_id = $1::text"};

using memory_id = std::pair<std::string, std::string>;  // category, key
memory_id id_of(const store::memory& m) { return {m.category, m.key}; }

// Listing order: newest first, then category and key (both ascending).
bool before(const store::memory& a, const store::memory& b) {
  return std::tie(b.updated_at, a.category, a.key) < std::tie(a.updated_at, b.category, b.key);
}

asio::awaitable<store::memory_page> page_of(store::memory_store& s, const std::string& user, store::memory_filter f) {
  diagnostics d;
  auto [ec, page] = co_await s.async_get_memories(user, std::move(f), d, asio::as_tuple(asio::use_awaitable));
  REQUIRE_MESSAGE(!ec, d.message());
  co_return page;
}

// Every memory of the listing, by pages of `size`.
asio::awaitable<std::vector<store::memory>> walk(store::memory_store& s, const std::string& user,
                                                 store::memory_filter f, int size) {
  std::vector<store::memory> all;
  f.limit = size;
  for (int pages = 0; pages < 10'000; ++pages) {
    auto page = co_await page_of(s, user, f);
    CHECK(page.memories.size() <= static_cast<std::size_t>(size));
    if (page.next) CHECK(page.memories.size() == static_cast<std::size_t>(size));
    all.insert(all.end(), page.memories.begin(), page.memories.end());
    if (!page.next) break;
    f.after = page.next;
  }
  co_return all;
}

asio::awaitable<void> expect_refused(store::memory_store& s, const std::string& user, store::memory_filter f,
                                     const std::string& message) {
  diagnostics d;
  auto [ec, page] = co_await s.async_get_memories(user, std::move(f), d, asio::as_tuple(asio::use_awaitable));
  CHECK(ec == errc::invalid_argument);
  CHECK(d.message() == message);
}

}  // namespace

TEST_CASE("pages walk a listing newest first, each memory once, through ties, with no next after the last") {
  for (bool coalesce : {true, false}) {
    CAPTURE(coalesce);
    test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
      const std::string u = std::string("pages-") + (s.options().coalesce ? "on" : "off");
      co_await test::sql(pool, forget_user, pg::params(u));
      co_await s.async_save_memories(items(u, 0, 40), asio::use_awaitable);
      co_await test::sql(pool, same_instant, pg::params(u));
      store::memory_filter everything;
      everything.limit = 1000;
      const auto full = (co_await page_of(s, u, everything)).memories;
      REQUIRE(full.size() == 52);
      CHECK(std::is_sorted(full.begin(), full.end(), before));
      const store::memory_filter none;
      for (int size : sizes()) {
        CAPTURE(size);
        CHECK((co_await walk(s, u, none, size)) == full);
      }
      // Filters page alike: a category, keys (in any order, with repeats), both.
      store::memory_filter facts;
      facts.category = "FACT";
      std::vector<store::memory> expected;
      for (const auto& m : full)
        if (m.category == "FACT") expected.push_back(m);
      CHECK((co_await walk(s, u, facts, 3)) == expected);
      store::memory_filter some_keys;
      some_keys.keys = strings("t3", "k7", "k1", "t1", "k7", "t2", "nope");
      expected.clear();
      for (const auto& m : full)
        if (m.key == "t3" || m.key == "k7" || m.key == "k1" || m.key == "t1" || m.key == "t2") expected.push_back(m);
      CHECK((co_await walk(s, u, some_keys, 2)) == expected);
      // A full last page says nothing follows; an empty listing has no next either.
      store::memory_filter exact;
      exact.limit = 52;
      CHECK(!(co_await page_of(s, u, exact)).next);
      CHECK((co_await walk(s, u + "-nobody", none, 10)).empty());
    }, mode(coalesce));
  }
}

TEST_CASE("a cursor of another listing, an altered one or a malformed one is refused naming after") {
  test::with_store([](pg::connection_pool&, store::memory_store& s) -> asio::awaitable<void> {
    const std::string u = "cursor-owner";
    co_await s.async_save_memories(items(u, 0, 10), asio::use_awaitable);
    co_await s.async_save_memories(items(u + "-other", 0, 10), asio::use_awaitable);
    store::memory_filter first;
    first.limit = 3;
    const auto cursor = (co_await page_of(s, u, first)).next;
    REQUIRE(cursor);
    store::memory_filter f;
    f.after = cursor;
    const std::string foreign = "after: cursor of another listing (another user, category or keys)";
    co_await expect_refused(s, u + "-other", f, foreign);
    f.category = "FACT";
    co_await expect_refused(s, u, f, foreign);
    f.category.reset();
    f.keys = strings("k1");
    co_await expect_refused(s, u, f, foreign);
    f.keys.reset();
    // The same listing with its keys in another order is the same listing.
    store::memory_filter keyed;
    keyed.keys = strings("k1", "k2", "k3");
    keyed.limit = 1;
    keyed.after = (co_await page_of(s, u, keyed)).next;
    REQUIRE(keyed.after);
    keyed.keys = strings("k3", "k1", "k2", "k1");
    CHECK((co_await page_of(s, u, keyed)).memories.size() == 1);
    // Every one-character change of the text is refused, never read as another position.
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int accepted = 0;
    for (std::size_t i = 0; i < cursor->size(); ++i) {
      std::string altered = *cursor;
      altered[i] = alphabet[(alphabet.find(altered[i]) + 1 + i) % alphabet.size()];
      f.after = altered;
      diagnostics d;
      auto [ec, page] = co_await s.async_get_memories(u, f, d, asio::as_tuple(asio::use_awaitable));
      if (ec != errc::invalid_argument || d.message().rfind("after: ", 0) != 0) ++accepted;
    }
    CHECK(accepted == 0);
    f.after = cursor->substr(0, cursor->size() - 4);
    co_await expect_refused(s, u, f, "after: not a cursor (altered or truncated)");
    f.after = *cursor + "AAAA";
    co_await expect_refused(s, u, f, "after: not a cursor (altered or truncated)");
    f.after = "";
    co_await expect_refused(s, u, f, "after: empty cursor (pass the `next` of the previous page)");
    f.after = "not a cursor!";
    co_await expect_refused(s, u, f, "after: not a cursor (malformed)");
    f.after = std::string(2000, 'A');
    co_await expect_refused(s, u, f, "after: not a cursor (longer than any cursor)");
  });
}

TEST_CASE("first and later pages of 20 users in one tick are one statement") {
  test::with_store([](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    constexpr int users = 20;
    for (int u = 0; u < users; ++u) co_await s.async_save_memories(items("tick" + std::to_string(u), 0, 9), asio::use_awaitable);
    std::vector<store::memory_page> firsts(users), seconds(users);
    for (auto* pages : {&firsts, &seconds}) {
      co_await test::reset_statement_counts(pool);
      const auto before = s.stats().queries;
      int done = 0;
      for (int u = 0; u < users; ++u) {
        store::memory_filter f;
        f.limit = 4;
        if (pages == &seconds) f.after = firsts[u].next;
        s.async_get_memories("tick" + std::to_string(u), f, [&, u, pages](error_code ec, store::memory_page p) {
          CHECK_MESSAGE(!ec, ec.message());
          (*pages)[u] = std::move(p);
          ++done;
        });
      }
      while (done < users) co_await test::sleep_for(std::chrono::milliseconds(2));
      CHECK(co_await test::statements_counted(pool) == 1);
      CHECK(s.stats().queries - before == 1);
    }
    for (int u = 0; u < users; ++u) {
      CHECK(firsts[u].memories.size() == 4);
      REQUIRE(seconds[u].memories.size() == 4);
      CHECK(before(firsts[u].memories.back(), seconds[u].memories.front()));
      CHECK(seconds[u].memories.front().user_id == "tick" + std::to_string(u));
    }
  });
}

TEST_CASE("randomized: while writes and deletes run, no memory comes twice and none unchanged is skipped") {
  using namespace asio::experimental::awaitable_operators;
  for (bool coalesce : {true, false})
    for (unsigned seed : {1u, 2u, 3u}) {
      CAPTURE(coalesce);
      CAPTURE(seed);
      test::with_store([seed](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
        const std::string u = "walk-" + std::to_string(seed) + (s.options().coalesce ? "-on" : "-off");
        co_await test::sql(pool, forget_user, pg::params(u));
        constexpr int initial = 300;
        co_await s.async_save_memories(items(u, 0, initial), asio::use_awaitable);
        co_await test::sql(pool, same_instant, pg::params(u));
        std::set<memory_id> existing, changed;  // changed: written or deleted during the walk
        const store::memory_filter none;
        for (const auto& m : (co_await walk(s, u, none, 1000))) existing.insert(id_of(m));
        REQUIRE(existing.size() == initial + 12);
        const std::set<memory_id> unchanged_candidates = existing;
        std::mt19937 rng(seed);
        int next_new = initial;
        // Writes of this round: updates and deletes of memories still there, and new ones.
        auto writes = [&]() -> asio::awaitable<void> {
          std::vector<store::memory_input> saves;
          for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
            auto it = std::next(existing.begin(), static_cast<long>(rng() % existing.size()));
            changed.insert(*it);
            if (rng() % 3 == 0) {
              const memory_id gone = *it;
              existing.erase(it);
              auto keys = strings(gone.second);
              co_await s.async_delete_memories(u, keys, gone.first, asio::use_awaitable);
            } else {
              saves.push_back({u, it->first, it->second, "updated"});
            }
          }
          auto fresh = items(u, next_new, static_cast<int>(rng() % 3));
          next_new += static_cast<int>(fresh.size());
          for (const auto& m : fresh) existing.insert({m.category, m.key});
          saves.insert(saves.end(), fresh.begin(), fresh.end());
          if (!saves.empty()) co_await s.async_save_memories(saves, asio::use_awaitable);
        };
        std::vector<store::memory> returned;
        store::memory_filter f;
        for (int pages = 0; pages < 1000; ++pages) {
          f.limit = 1 + static_cast<int>(rng() % 25);
          // The page and this round's writes run side by side: they may be in one tick.
          auto page = co_await (page_of(s, u, f) && writes());
          returned.insert(returned.end(), page.memories.begin(), page.memories.end());
          if (!page.next) break;
          f.after = page.next;
        }
        std::set<memory_id> seen;
        int twice = 0;
        for (const auto& m : returned)
          if (!seen.insert(id_of(m)).second) ++twice;
        CHECK(twice == 0);
        CHECK(std::is_sorted(returned.begin(), returned.end(), before));
        int skipped = 0;
        for (const auto& id : unchanged_candidates)
          if (!changed.contains(id) && !seen.contains(id)) ++skipped;
        CHECK(skipped == 0);
        CHECK(changed.size() > 20);  // the walk did run among writes
      }, mode(coalesce));
    }
}
