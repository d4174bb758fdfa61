// The invalidation triggers (migrations 4 and 5) as a listener sees them: one notification
// per statement that changed rows, naming each changed user once, split below
// PostgreSQL's 8,000-byte payload limit; "all" for what a payload cannot name.
#include "support.hpp"

#include "dataloader/pg/listener.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace pg = dataloader::pg;

namespace {

using test::strings;

const pg::statement save_rows{"test_trigger_save",
    "INSERT INTO memories (user_id, category, key, value) SELECT u, 'FACT', k, 'v' "
    "FROM unnest($1::text[], $2::text[]) AS t(u, k) "
    "ON CONFLICT (user_id, category, key) DO UPDATE SET value = EXCLUDED.value || 'x'"};
const pg::statement move_user{"test_trigger_move", "UPDATE memories SET user_id = $2::text WHERE user_id = $1::text"};
const pg::statement delete_user{"test_trigger_delete", "DELETE FROM memories WHERE user_id = ANY($1::text[])"};
const pg::statement put_profile{"test_trigger_profile",
    "INSERT INTO profiles (user_id, profile) VALUES ($1::text, 'p') "
    "ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile"};
const pg::statement put_onboarding{"test_trigger_onboarding",
    "INSERT INTO onboarding (user_id, state) VALUES ($1::text, '{}') "
    "ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state"};

// What the listener received, in order.
struct heard {
  bool listening = false;
  std::vector<std::string> payloads;
};

// The payloads that `statement` raised: waits for them, then for a marker write's own,
// so that a statement that should raise nothing is seen to raise nothing.
asio::awaitable<std::vector<nlohmann::json>> raised_by(pg::connection_pool& pool, heard& h, const pg::statement& st,
                                                       pg::params p) {
  const std::size_t before = h.payloads.size();
  co_await test::sql(pool, st, std::move(p));
  co_await test::sql(pool, put_profile, pg::params(std::string("trg-marker")));
  const auto marker_heard = [&] {
    for (std::size_t i = before; i < h.payloads.size(); ++i)
      if (h.payloads[i].find("trg-marker") != std::string::npos) return true;
    return false;
  };
  co_await test::wait_until(marker_heard);
  REQUIRE(marker_heard());
  std::vector<nlohmann::json> out;
  for (std::size_t i = before; i < h.payloads.size(); ++i) {
    if (h.payloads[i].find("trg-marker") != std::string::npos) break;
    CHECK(h.payloads[i].size() < 8000);
    out.push_back(nlohmann::json::parse(h.payloads[i]));
  }
  co_return out;
}

std::vector<std::string> users_of(const nlohmann::json& payload) {
  return payload.at("users").get<std::vector<std::string>>();
}

template <class F>
void with_listener(F&& f) {
  test::with_store([&](pg::connection_pool& pool, dataloader::store::memory_store&) -> asio::awaitable<void> {
    heard h;
    pg::listener_params lp;
    lp.conninfo = test::server::get().url;
    lp.channels = {"dataloader_invalidate"};
    pg::listener_events events;
    events.listening = [&] { h.listening = true; };
    events.notified = [&](const pg::notification& n) { h.payloads.push_back(n.payload); };
    events.lost = [&](const std::string&) { h.listening = false; };
    pg::listener listener(co_await asio::this_coro::executor, lp, events);
    listener.start();
    co_await test::wait_until([&] { return h.listening; });
    REQUIRE(h.listening);
    co_await f(pool, h);
    listener.stop();
  });
}

std::vector<std::string> repeat(const std::string& s, std::size_t n) { return std::vector<std::string>(n, s); }

}  // namespace

TEST_CASE("a statement's notification names each changed user once, for inserts, updates and deletes") {
  with_listener([](pg::connection_pool& pool, heard& h) -> asio::awaitable<void> {
    const auto users = strings("trg-b", "trg-a", "trg-b"), keys = strings("k1", "k1", "k2");
    auto got = co_await raised_by(pool, h, save_rows, pg::params(users, keys));  // three new rows
    REQUIRE(got.size() == 1);
    CHECK(got[0].at("table") == "memories");
    CHECK(users_of(got[0]) == strings("trg-a", "trg-b"));
    got = co_await raised_by(pool, h, save_rows, pg::params(users, keys));  // the same rows updated
    REQUIRE(got.size() == 1);
    CHECK(users_of(got[0]) == strings("trg-a", "trg-b"));
    // A changed user id names the user the rows left and the one they joined.
    got = co_await raised_by(pool, h, move_user, pg::params(std::string("trg-b"), std::string("trg-c")));
    REQUIRE(got.size() == 1);
    CHECK(users_of(got[0]) == strings("trg-b", "trg-c"));
    const auto gone = strings("trg-a", "trg-c", "trg-none");
    got = co_await raised_by(pool, h, delete_user, pg::params(gone));
    REQUIRE(got.size() == 1);
    CHECK(users_of(got[0]) == strings("trg-a", "trg-c"));
    // Nothing changed, nothing sent.
    got = co_await raised_by(pool, h, delete_user, pg::params(gone));
    CHECK(got.empty());
    got = co_await raised_by(pool, h, put_profile, pg::params(std::string("trg-p")));
    REQUIRE(got.size() == 1);
    CHECK(got[0].at("table") == "profiles");
    CHECK(users_of(got[0]) == strings("trg-p"));
    got = co_await raised_by(pool, h, put_onboarding, pg::params(std::string("trg-p")));
    REQUIRE(got.size() == 1);
    CHECK(got[0].at("table") == "onboarding");
  });
}

TEST_CASE("many users are split over payloads below 8,000 bytes, and an id too long for one is sent as all") {
  with_listener([](pg::connection_pool& pool, heard& h) -> asio::awaitable<void> {
    std::vector<std::string> users;
    for (int i = 0; i < 600; ++i) users.push_back("trg-split-user-with-a-longish-id-" + std::to_string(i));
    auto got = co_await raised_by(pool, h, save_rows, pg::params(users, repeat("k", users.size())));
    CHECK(got.size() > 1);
    std::multiset<std::string> named;
    for (const auto& payload : got) {
      CHECK(payload.at("table") == "memories");
      for (auto& u : users_of(payload)) named.insert(u);
    }
    CHECK(named == std::multiset<std::string>(users.begin(), users.end()));
    // Small and large payloads alike: a short statement after the long one is one payload.
    const auto one = strings("trg-split-one");
    got = co_await raised_by(pool, h, save_rows, pg::params(one, repeat("k", 1)));
    REQUIRE(got.size() == 1);
    CHECK(users_of(got[0]) == one);
    const auto huge = repeat(std::string(2000, 'h'), 1);
    got = co_await raised_by(pool, h, save_rows, pg::params(huge, repeat("k", 1)));
    REQUIRE(got.size() == 1);
    CHECK(got[0].at("all") == true);
    co_await test::sql(pool, delete_user, pg::params(huge));
  });
}
