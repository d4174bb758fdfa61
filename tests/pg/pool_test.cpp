// The PostgreSQL layer against a real server (label pg).
#include "support.hpp"

#include "dataloader/pg/lsn.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <signal.h>
#include <numeric>
#include <thread>

using namespace dataloader;
namespace asio = boost::asio;
using test::server;

namespace {
const pg::statement roundtrip_st{
    "test_roundtrip",
    "SELECT $1::text, $2::int2, $3::int4, $4::int8, $5::bool, $6::float8, $7::jsonb, "
    "$8::timestamptz, $9::text[], $10::text"};
const pg::statement echo_int{"test_echo_int", "SELECT $1::int4"};
const pg::statement unnest_st{"test_unnest", "SELECT u FROM unnest($1::text[]) WITH ORDINALITY AS t(u, n) ORDER BY n"};
const pg::statement divide{"test_divide", "SELECT 10 / $1::int4"};
const pg::statement sleep_st{"test_sleep", "SELECT pg_sleep($1::float8), 42"};
const pg::statement backend_pid{"test_backend_pid", "SELECT pg_backend_pid()"};
const pg::statement as_array_st{"test_as_array", "SELECT $1::text[]"};
const pg::statement tx_create{"test_tx_create", "CREATE TABLE IF NOT EXISTS test_tx (v int PRIMARY KEY)"};
const pg::statement tx_insert{"test_tx_insert", "INSERT INTO test_tx VALUES ($1::int4)"};
const pg::statement tx_count{"test_tx_count", "SELECT count(*) FROM test_tx WHERE v IN (1, 2)"};
const pg::statement w_create{"test_w_create", "CREATE TABLE IF NOT EXISTS test_write_once (v int)"};
const pg::statement w_insert{"test_w_insert", "INSERT INTO test_write_once SELECT $1::int4 FROM pg_sleep(0.5)"};
const pg::statement w_count{"test_w_count", "SELECT count(*) FROM test_write_once"};
const pg::statement terminate_st{"test_terminate", "SELECT pg_terminate_backend($1::int4)"};
// GCC 12 cannot keep a braced list of literals in a coroutine frame: build it here.
std::vector<std::string> hostile_strings() {
  return {"plain", "", " ", "NULL", "null", "a,b", "{braces}", "}{", R"("quoted")", R"(back\slash)",
          R"(\")", "'); DROP TABLE profiles; --", "tab\there", "new\nline", "ünïcödé ✓ 𝄞 日本語",
          "\"", "\\", ",", "{", "}", "  padded  "};
}
std::vector<std::string> with_nul_byte() { return {"ok", std::string("bad\0", 4)}; }
}  // namespace

TEST_CASE("every type round-trips") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params());
    pool.start();
    const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    nlohmann::json doc = {{"step", 3}, {"done", false}, {"tags", {"a", "ü"}}};
    std::vector<std::string> arr{"x", "y z"};
    pg::params p(std::string("héllo"), std::int16_t{-7}, 2'000'000'000, std::int64_t{9'000'000'000'000},
                 true, 0.125, doc, timestamp(now), arr, std::optional<std::string>{});
    auto [ec, r, diag] = co_await test::simple{pool}.query(roundtrip_st, std::move(p));
    REQUIRE_MESSAGE(!ec, diag.message());
    REQUIRE(r.rows() == 1);
    CHECK(r.get<std::string>(0, 0) == "héllo");
    CHECK(r.get<std::int16_t>(0, 1) == -7);
    CHECK(r.get<std::int32_t>(0, 2) == 2'000'000'000);
    CHECK(r.get<std::int64_t>(0, 3) == 9'000'000'000'000);
    CHECK(r.get<bool>(0, 4) == true);
    CHECK(r.get<double>(0, 5) == 0.125);
    CHECK(r.get<nlohmann::json>(0, 6) == doc);
    CHECK(r.get<timestamp>(0, 7) == timestamp(now));
    CHECK(r.get<std::vector<std::string>>(0, 8) == arr);
    CHECK(r.is_null(0, 9));
    CHECK(!r.get<std::string>(0, 9));
    auto row = r.row<std::string, std::int16_t>(0);
    REQUIRE(row);
    CHECK(std::get<1>(*row) == -7);
  });
}

TEST_CASE("hostile text[] contents round-trip exactly") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params());
    pool.start();
    const std::vector<std::string> hostile = hostile_strings();
    auto [ec, r, diag] = co_await test::simple{pool}.query(unnest_st, pg::params(hostile));
    REQUIRE_MESSAGE(!ec, diag.message());
    REQUIRE(r.rows() == hostile.size());
    for (std::size_t i = 0; i < hostile.size(); ++i) CHECK(r.get<std::string>(i, 0) == hostile[i]);
    // And as one array value, decoded back.
    auto [ec2, r2, diag2] = co_await test::simple{pool}.query(as_array_st, pg::params(hostile));
    REQUIRE_MESSAGE(!ec2, diag2.message());
    CHECK(r2.get<std::vector<std::string>>(0, 0) == hostile);
  });
}

TEST_CASE("a parameter with a NUL byte is refused before anything is sent") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params());
    pool.start();
    pg::params with_nul(with_nul_byte());
    auto [ec, r, diag] = co_await test::simple{pool}.query(unnest_st, std::move(with_nul));
    CHECK(ec == errc::invalid_argument);
    CHECK(diag.message() == "parameter $1 element 1 contains a NUL byte at offset 3");
    CHECK(pool.stats().statements == 0);
  });
}

TEST_CASE("100 statements submitted in one tick leave in one flush and arrive in order") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(2));
    pool.start();
    co_await test::simple{pool}.query(echo_int, pg::params(0));  // connected and prepared
    const auto before = pool.stats();
    std::vector<int> got;
    std::vector<diagnostics> diags(100);
    int done = 0;
    for (int i = 0; i < 100; ++i)
      pool.async_query(echo_int, pg::params(i), {}, diags[i], [&, i](error_code ec, pg::result r) {
        CHECK(!ec);
        got.push_back(*r.get<int>(0, 0));
        CHECK(got.back() == i);
        ++done;
      });
    while (done < 100) co_await test::sleep_for(std::chrono::milliseconds(5));
    std::vector<int> expected(100);
    std::iota(expected.begin(), expected.end(), 0);
    CHECK(got == expected);
    const auto after = pool.stats();
    CHECK(after.statements - before.statements == 100);
    CHECK(after.round_trips - before.round_trips == 1);
  });
}

TEST_CASE("a failing statement among many fails only its own caller") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    std::vector<error_code> ecs(11);
    std::vector<diagnostics> diags(11);
    std::vector<int> values(11, -1);
    int done = 0;
    for (int i = 0; i < 11; ++i)
      pool.async_query(divide, pg::params(i == 5 ? 0 : 1), {}, diags[i], [&, i](error_code ec, pg::result r) {
        ecs[i] = ec;
        if (!ec) values[i] = *r.get<int>(0, 0);
        ++done;
      });
    while (done < 11) co_await test::sleep_for(std::chrono::milliseconds(5));
    for (int i = 0; i < 11; ++i) {
      if (i == 5) {
        CHECK(pg::is_server_error(ecs[i]));
        CHECK(pg::sqlstate_of(ecs[i]) == "22012");
        CHECK(diags[i].sqlstate() == "22012");
        CHECK(diags[i].message() == "division by zero");
      } else {
        CHECK(!ecs[i]);
        CHECK(values[i] == 10);
      }
    }
  });
}

TEST_CASE("a statement group runs in one transaction") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    co_await test::simple{pool}.query(tx_create);
    std::vector<pg::query> group{{&tx_insert, pg::params(1)}, {&tx_insert, pg::params(1)}};  // duplicate key
    diagnostics diag;
    auto [ec, rs] = co_await pool.async_pipeline(std::move(group), {}, diag, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == pg::sqlstate::unique_violation);
    CHECK(diag.sqlstate() == "23505");
    auto [ec2, r, d2] = co_await test::simple{pool}.query(tx_count);
    CHECK(r.get<std::int64_t>(0, 0) == 0);  // the first insert was rolled back too
  });
}

TEST_CASE("a statement first prepared behind a failing one in its group is prepared again next time") {
  // The failure aborts the rest of the pipeline up to the sync point: the Parse of the
  // second statement never runs, so the connection must not take it as prepared.
  static const pg::statement divide{"test_abort_divide", "SELECT 1 / $1::int4"};
  static const pg::statement after{"test_abort_after", "SELECT $1::int4 + 1"};
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    std::vector<pg::query> group{{&divide, pg::params(0)}, {&after, pg::params(1)}};
    diagnostics diag;
    auto [ec, rs] = co_await pool.async_pipeline(std::move(group), {}, diag, asio::as_tuple(asio::use_awaitable));
    CHECK(ec);
    CHECK(diag.sqlstate() == "22012");  // division_by_zero
    auto [ec2, r, d2] = co_await test::simple{pool}.query(after, pg::params(1));
    CHECK_MESSAGE(!ec2, d2.message());
    CHECK(r.get<std::int32_t>(0, 0) == 2);
    CHECK(pool.stats().reconnects == 0);
  });
}

TEST_CASE("position_after_commit: the position is read after the group committed, in the same round trip") {
  static const pg::statement insert_position{"test_insert_position", "SELECT pg_current_wal_insert_lsn()::text"};
  static const pg::statement create{"test_position_create", "CREATE TABLE IF NOT EXISTS test_position (v int PRIMARY KEY)"};
  static const pg::statement empty{"test_position_empty", "TRUNCATE test_position"};
  static const pg::statement insert{"test_position_insert", "INSERT INTO test_position VALUES ($1::int4)"};
  static const pg::statement count{"test_position_count", "SELECT count(*) FROM test_position"};
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    co_await test::simple{pool}.query(create);
    co_await test::simple{pool}.query(empty);
    auto [e0, r0, d0] = co_await test::simple{pool}.query(insert_position);
    const auto before = *pg::parse_lsn(*r0.get<std::string>(0, 0));
    const auto trips = pool.stats().round_trips;
    pg::query_options o;
    o.position_after_commit = true;
    std::vector<pg::query> group{{&insert, pg::params(41)}, {&insert, pg::params(42)}};
    diagnostics diag;
    auto [ec, rs] = co_await pool.async_pipeline(std::move(group), o, diag, asio::as_tuple(asio::use_awaitable));
    REQUIRE_MESSAGE(!ec, diag.message());
    REQUIRE(rs.size() == 3);  // the group's two, then the position
    const auto position = pg::parse_lsn(*rs[2].get<std::string>(0, 0));
    REQUIRE(position);
    CHECK(*position > before);  // the commit record lies between
    CHECK(pool.stats().round_trips == trips + 1);
    // A failing group fails as before; the connection stays in step for the next caller.
    std::vector<pg::query> duplicate{{&insert, pg::params(41)}};
    auto [ec2, rs2] = co_await pool.async_pipeline(std::move(duplicate), o, diag, asio::as_tuple(asio::use_awaitable));
    CHECK(ec2 == pg::sqlstate::unique_violation);
    auto [ec3, r3, d3] = co_await test::simple{pool}.query(count);
    CHECK_MESSAGE(!ec3, d3.message());
    CHECK(r3.get<std::int64_t>(0, 0) == 2);
    CHECK(pool.stats().reconnects == 0);
  });
}

TEST_CASE("statements are prepared once per connection and reused by name") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    for (int i = 0; i < 20; ++i) co_await test::simple{pool}.query(echo_int, pg::params(i));
    CHECK(pool.stats().prepares == 1);
    CHECK(pool.stats().statements == 20);
  });
}

TEST_CASE("a statement whose columns changed type under its prepared plan is prepared again and answers") {
  static const pg::statement create{"test_stale_create", "CREATE TABLE IF NOT EXISTS test_stale (v int4)"};
  static const pg::statement reset{"test_stale_reset", "ALTER TABLE test_stale ALTER COLUMN v TYPE int4"};
  static const pg::statement widen{"test_stale_widen", "ALTER TABLE test_stale ALTER COLUMN v TYPE int8"};
  static const pg::statement fill{"test_stale_fill", "INSERT INTO test_stale SELECT 7 WHERE NOT EXISTS (SELECT 1 FROM test_stale)"};
  static const pg::statement read{"test_stale_read", "SELECT v FROM test_stale"};
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pg::connection_pool other(ex, test::params(1));
    pool.start();
    other.start();
    for (const auto* st : {&create, &reset, &fill}) REQUIRE(!std::get<0>(co_await test::simple{other}.query(*st)));
    auto [e1, before, d1] = co_await test::simple{pool}.query(read);
    REQUIRE_MESSAGE(!e1, d1.message());
    // Another session changes the result type: PostgreSQL refuses the cached plan (0A000).
    REQUIRE(!std::get<0>(co_await test::simple{other}.query(widen)));
    for (int i = 0; i < 3; ++i) {
      auto [e2, after, d2] = co_await test::simple{pool}.query(read);
      CHECK_MESSAGE(!e2, d2.message());
      CHECK(after.get<std::int64_t>(0, 0) == 7);
    }
    CHECK(pool.stats().retries == 1);
    CHECK(pool.stats().prepares == 2);
    CHECK(pool.stats().reconnects == 0);
  });
}

TEST_CASE("batch statements are planned once (generic_plans), or per execution when turned off") {
  static const pg::statement by_ids{"test_plans_by_ids", "SELECT x FROM unnest($1::text[]) AS t(x) WHERE x = ANY($1::text[])"};
  static const pg::statement plans{"test_plans_seen",
                                   "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1::text"};
  for (bool generic : {true, false}) {
    CAPTURE(generic);
    test::run([generic](asio::any_io_executor ex) -> asio::awaitable<void> {
      auto p = test::params(1);  // one connection: the statements and the check share a session
      p.generic_plans = generic;
      pg::connection_pool pool(ex, p);
      pool.start();
      std::vector<std::string> ids{"a", "b", "c"};
      for (int i = 0; i < 8; ++i) {
        auto [ec, r, d] = co_await test::simple{pool}.query(by_ids, pg::params(ids));
        REQUIRE_MESSAGE(!ec, d.message());
        CHECK(r.rows() == 3);
      }
      auto [ec, r, d] = co_await test::simple{pool}.query(plans, pg::params(by_ids.name));
      REQUIRE_MESSAGE(!ec, d.message());
      REQUIRE(r.rows() == 1);
      if (generic) {
        CHECK(r.get<std::int64_t>(0, 1) == 0);
        CHECK(r.get<std::int64_t>(0, 0) == 8);
      } else {
        CHECK(r.get<std::int64_t>(0, 1) >= 5);  // PostgreSQL's default: at least the first five re-planned
      }
    });
  }
}

TEST_CASE("the caller's own session options in the conninfo are kept beside the pool's") {
  static const pg::statement show{"test_show_settings",
                                  "SELECT current_setting('work_mem'), current_setting('DateStyle'), current_setting('plan_cache_mode'), "
                                  "current_setting('enable_bitmapscan')"};
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = test::params(1);
    const bool url = p.conninfo.find("://") != std::string::npos;
    p.conninfo += url ? (p.conninfo.find('?') == std::string::npos ? "?" : "&") + std::string("options=-c%20work_mem%3D7MB")
                      : std::string(" options='-c work_mem=7MB'");
    pg::connection_pool pool(ex, p);
    pool.start();
    auto [ec, r, d] = co_await test::simple{pool}.query(show);
    REQUIRE_MESSAGE(!ec, d.message());
    CHECK(r.get<std::string>(0, 0) == "7MB");
    CHECK(r.get<std::string>(0, 1) == "ISO, MDY");
    CHECK(r.get<std::string>(0, 2) == "force_generic_plan");
    CHECK(r.get<std::string>(0, 3) == "off");
  });
}

namespace {

const pg::statement slow_three{"test_slow", "SELECT g, pg_sleep(0.04) FROM unnest($1::text[]) g"};
const pg::statement fast_after_slow{"test_fast_after_slow", "SELECT 1"};

// GCC 12 cannot keep braced lists in coroutine frames: built here.
std::vector<pg::query> slow_then_fast() {
  std::vector<pg::query> group;
  group.push_back({&slow_three, pg::params(std::vector<std::string>{"a", "b", "c"})});
  group.push_back({&fast_after_slow, {}});
  return group;
}

}  // namespace

TEST_CASE("a slow statement is reported once with its name, keys and rows, and one queued behind it is not blamed") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = test::params(1);  // one connection: the fast statement waits behind the slow one
    p.slow_statement_threshold = std::chrono::milliseconds(60);
    std::vector<std::string> reported;
    p.on_slow_statement = [&](const pg::slow_statement& s) {
      reported.push_back(std::string(s.name) + " keys=" + std::to_string(s.keys) + " rows=" + std::to_string(s.rows));
      CHECK(s.elapsed >= std::chrono::milliseconds(60));
      CHECK(s.server.find(':') != std::string_view::npos);
    };
    pg::connection_pool pool(ex, p);
    pool.start();
    auto group = slow_then_fast();
    diagnostics d;
    auto [ec, rs] = co_await pool.async_pipeline(std::move(group), {}, d, asio::as_tuple(asio::use_awaitable));
    REQUIRE_MESSAGE(!ec, d.message());
    auto [ec2, r2, d2] = co_await test::simple{pool}.query(fast_after_slow);
    REQUIRE(!ec2);
    REQUIRE(reported.size() == 1);
    CHECK(reported[0] == "test_slow keys=3 rows=3");
    const auto counted = pool.stats().slow_statements;
    CHECK(counted.size() == 1);
    CHECK(counted.at("test_slow") == 1);
  });
}

TEST_CASE("pool exhaustion gives pool_timeout") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = test::params(2);
    p.acquire_timeout = std::chrono::milliseconds(150);
    pg::connection_pool pool(ex, p);
    pool.start();
    diagnostics d1, d2, d3;
    auto [e1, c1] = co_await pool.async_acquire(std::chrono::seconds(5), d1, asio::as_tuple(asio::use_awaitable));
    auto [e2, c2] = co_await pool.async_acquire(std::chrono::seconds(5), d2, asio::as_tuple(asio::use_awaitable));
    REQUIRE(!e1);
    REQUIRE(!e2);
    const auto start = std::chrono::steady_clock::now();
    auto [e3, c3] = co_await pool.async_acquire(std::chrono::milliseconds(100), d3, asio::as_tuple(asio::use_awaitable));
    CHECK(e3 == errc::pool_timeout);
    CHECK(!c3.valid());
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(100));
    CHECK(d3.message().find("all 2 are leased or down") != std::string::npos);
    // Shared queries wait for acquire_timeout too.
    auto [e4, r4, d4] = co_await test::simple{pool}.query(echo_int, pg::params(1));
    CHECK(e4 == errc::pool_timeout);
    // A leased connection serves its holder.
    auto [e5, r5] = co_await c1.async_query(echo_int, pg::params(7), {}, d1, asio::as_tuple(asio::use_awaitable));
    CHECK(!e5);
    CHECK(r5.get<int>(0, 0) == 7);
    // Released, it serves everyone again.
    c1 = pg::pooled_connection{};
    auto [e6, r6, d6] = co_await test::simple{pool}.query(echo_int, pg::params(8));
    CHECK(!e6);
  });
}

TEST_CASE("lease waiters are served in order") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    diagnostics d;
    auto [e, held] = co_await pool.async_acquire(std::chrono::seconds(5), d, asio::as_tuple(asio::use_awaitable));
    REQUIRE(!e);
    std::vector<int> order;
    std::vector<diagnostics> ds(3);
    std::vector<pg::pooled_connection> leases(3);
    for (int i = 0; i < 3; ++i)
      pool.async_acquire(std::chrono::seconds(5), ds[i], [&, i](error_code ec, pg::pooled_connection c) {
        CHECK(!ec);
        order.push_back(i);
        leases[i] = pg::pooled_connection{};  // hand it on at once
        c = pg::pooled_connection{};
      });
    co_await test::sleep_for(std::chrono::milliseconds(20));
    held = pg::pooled_connection{};
    while (order.size() < 3) co_await test::sleep_for(std::chrono::milliseconds(5));
    CHECK(order == std::vector<int>{0, 1, 2});
  });
}

TEST_CASE("a statement past its deadline is cancelled and the connection serves the next") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    co_await test::simple{pool}.query(echo_int, pg::params(1));
    pg::query_options o;
    o.timeout = std::chrono::milliseconds(200);
    const auto start = std::chrono::steady_clock::now();
    auto [ec, r, diag] = co_await test::simple{pool}.query(sleep_st, pg::params(10.0), o);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(ec == errc::timeout);
    CHECK(took < std::chrono::milliseconds(1500));
    CHECK(diag.message() == "statement group ran past its deadline and was abandoned (the server was asked to cancel it)");
    auto [ec2, r2, d2] = co_await test::simple{pool}.query(echo_int, pg::params(5));
    CHECK(!ec2);
    CHECK(r2.get<int>(0, 0) == 5);
    CHECK(pool.stats().reconnects == 0);  // the same connection
    CHECK(pool.stats().timeouts == 1);
  });
}

TEST_CASE("after pg_terminate_backend a read is retried on a fresh connection") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pg::connection_pool killer(ex, test::params(1));
    pool.start();
    killer.start();
    auto [e1, pid, d1] = co_await test::simple{pool}.query(backend_pid);
    REQUIRE(!e1);
    // The read is in flight when its backend dies.
    pg::query_options read;
    read.retry_on_connection_loss = true;
    diagnostics d;
    std::optional<std::tuple<error_code, pg::result>> outcome;
    pool.async_query(sleep_st, pg::params(0.5), read, d, [&](error_code ec, pg::result r) { outcome.emplace(ec, std::move(r)); });
    co_await test::sleep_for(std::chrono::milliseconds(100));
    auto [e2, k, d2] = co_await test::simple{killer}.query(terminate_st, pg::params(*pid.get<int>(0, 0)));
    REQUIRE(!e2);
    while (!outcome) co_await test::sleep_for(std::chrono::milliseconds(10));
    CHECK_MESSAGE(!std::get<0>(*outcome), d.message());
    CHECK(std::get<1>(*outcome).get<int>(0, 1) == 42);
    CHECK(pool.stats().retries == 1);
    CHECK(pool.stats().reconnects == 1);
  });
}

TEST_CASE("a server that stops answering costs a caller its deadline, then the connection is replaced") {
  if (!server::get().can_restart()) return;  // never signal an external server's processes
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    auto [e1, pid_result, d1] = co_await test::simple{pool}.query(backend_pid);
    REQUIRE(!e1);
    const pid_t backend = *pid_result.get<int>(0, 0);
    pg::query_options o;
    o.timeout = std::chrono::milliseconds(200);
    // The backend is stopped while it sleeps: it can act on neither the statement nor the
    // cancel request, as when the whole server is paused.
    std::optional<std::pair<error_code, std::chrono::steady_clock::duration>> outcome;
    diagnostics d;
    const auto start = std::chrono::steady_clock::now();
    pool.async_query(sleep_st, pg::params(0.3), o, d, [&](error_code ec, pg::result) {
      outcome.emplace(ec, std::chrono::steady_clock::now() - start);
    });
    co_await test::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(::kill(backend, SIGSTOP) == 0);
    while (!outcome) co_await test::sleep_for(std::chrono::milliseconds(5));
    CHECK(outcome->first == errc::timeout);
    CHECK(outcome->second < std::chrono::milliseconds(1000));  // at the deadline, not after the grace
    // The cancel goes unanswered for the 2 s grace: the connection is dropped and replaced.
    while (pool.stats().reconnects == 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
      co_await test::sleep_for(std::chrono::milliseconds(20));
    ::kill(backend, SIGCONT);
    CHECK(pool.stats().reconnects == 1);
    auto [e2, r2, d2] = co_await test::simple{pool}.query(echo_int, pg::params(7));
    CHECK_MESSAGE(!e2, d2.message());
    CHECK(r2.get<int>(0, 0) == 7);
  });
}

TEST_CASE("a write is never retried blindly when its connection dies") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pg::connection_pool killer(ex, test::params(1));
    pool.start();
    killer.start();
    co_await test::simple{pool}.query(w_create);
    auto [e1, pid, d1] = co_await test::simple{pool}.query(backend_pid);
    diagnostics d;
    std::optional<error_code> outcome;
    pool.async_query(w_insert, pg::params(1), {}, d, [&](error_code ec, pg::result) { outcome = ec; });
    co_await test::sleep_for(std::chrono::milliseconds(100));
    co_await test::simple{killer}.query(terminate_st, pg::params(*pid.get<int>(0, 0)));
    while (!outcome) co_await test::sleep_for(std::chrono::milliseconds(10));
    CHECK(*outcome == errc::outcome_unknown);  // sent, then the connection broke
    CHECK(d.message().find("connection to the database lost after the statements were sent") == 0);
    CHECK(pool.stats().retries == 0);
    auto [e3, c, d3] = co_await test::simple{killer}.query(w_count);
    CHECK(c.get<std::int64_t>(0, 0) == 0);
  });
}

TEST_CASE("key=value conninfo with host=/path connects") {
  if (!server::get().can_restart()) return;  // external server: its socket path is unknown
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = test::params(1);
    const auto& url = server::get().url;
    const auto port = url.substr(url.find("port=") + 5, url.find("&user") - url.find("port=") - 5);
    p.conninfo = "host=" + server::get().dir + " port=" + port + " dbname=postgres user=postgres";
    pg::connection_pool pool(ex, p);
    pool.start();
    auto [ec, r, diag] = co_await test::simple{pool}.query(echo_int, pg::params(3));
    CHECK_MESSAGE(!ec, diag.message());
  });
}

TEST_CASE("an unreachable database fails fast with the connection error") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = test::params(2);
    p.conninfo = "host=/nonexistent-dir port=1 dbname=x connect_timeout=2";
    p.acquire_timeout = std::chrono::seconds(30);
    pg::connection_pool pool(ex, p);
    pool.start();
    co_await test::sleep_for(std::chrono::milliseconds(100));  // first attempts fail
    const auto start = std::chrono::steady_clock::now();
    auto [ec, r, diag] = co_await test::simple{pool}.query(echo_int, pg::params(1));
    CHECK(ec == errc::connection_lost);
    CHECK(diag.message().find("database unavailable") == 0);
    CHECK(diag.message().find("nonexistent-dir") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    CHECK(!pool.healthy());
    // An acquire too: fails at once rather than after its 30 s.
    diagnostics lease_diag;
    auto [lease_ec, lease] = co_await pool.async_acquire(std::chrono::seconds(30), lease_diag,
                                                         asio::as_tuple(asio::use_awaitable));
    CHECK(lease_ec == errc::connection_lost);
    CHECK(!lease.valid());
    CHECK(lease_diag.message().find("database unavailable") == 0);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  });
}

TEST_CASE("a server restart during a stream of reads: no hang, clear errors, recovery within 5 s") {
  if (!server::get().can_restart()) return;  // never restart an external server
  asio::io_context io;
  pg::connection_pool pool(io.get_executor(), test::params(2));
  pool.start();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, unclear{0};
  std::atomic<std::int64_t> restarted_at{0}, first_ok_after{0};
  int readers = 8;
  for (int c = 0; c < 8; ++c)
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      pg::query_options read;
      read.retry_on_connection_loss = true;
      read.timeout = std::chrono::seconds(3);
      while (!stop) {
        auto [ec, r, diag] = co_await test::simple{pool}.query(echo_int, pg::params(1), read);
        if (!ec) {
          ++ok;
          const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
          std::int64_t expected = 0;
          if (restarted_at && first_ok_after == 0) first_ok_after.compare_exchange_strong(expected, now);
        } else {
          ++failed;
          if (ec != errc::connection_lost && ec != errc::outcome_unknown && ec != errc::pool_timeout &&
              !pg::is_server_error(ec))
            ++unclear;
          if (diag.message().empty()) ++unclear;
          co_await test::sleep_for(std::chrono::milliseconds(20));
        }
      }
      if (--readers == 0) pool.close();  // the last reader out lets io.run() return
    }, asio::detached);
  std::thread driver([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    server::get().control("restart");
    restarted_at = std::chrono::steady_clock::now().time_since_epoch().count();
    std::this_thread::sleep_for(std::chrono::seconds(6));
    stop = true;
  });
  const auto began = std::chrono::steady_clock::now();
  io.run();  // returns only when every reader finished: nothing hangs
  driver.join();
  CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(20));
  CHECK(unclear == 0);
  CHECK(ok > 0);
  REQUIRE(first_ok_after != 0);
  const auto recovery = std::chrono::steady_clock::duration(first_ok_after - restarted_at);
  MESSAGE("recovered " << std::chrono::duration_cast<std::chrono::milliseconds>(recovery).count()
                       << " ms after the restart; " << ok.load() << " reads ok, " << failed.load() << " failed");
  CHECK(recovery < std::chrono::seconds(5));
  CHECK(pool.stats().reconnects >= 1);
}

TEST_CASE("operations without diagnostics complete with the same codes") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    auto [ec, r] = co_await pool.async_query(divide, pg::params(0), {}, asio::as_tuple(asio::use_awaitable));
    CHECK(pg::sqlstate_of(ec) == "22012");
    std::vector<pg::query> group;  // a named value: GCC 12 and braced lists in co_await (README)
    group.push_back({&echo_int, pg::params(3)});
    auto [ok, rs] = co_await pool.async_pipeline(std::move(group), {}, asio::as_tuple(asio::use_awaitable));
    CHECK(!ok);
    CHECK(rs.at(0).get<int>(0, 0) == 3);
    auto [le, lease] = co_await pool.async_acquire(std::chrono::seconds(1), asio::as_tuple(asio::use_awaitable));
    CHECK(!le);
    CHECK(lease.valid());
  });
}
