// Per-operation cancellation in the PostgreSQL layer (label pg): through the handler's
// cancellation slot, as every Asio operation.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <chrono>

using namespace dataloader;
namespace asio = boost::asio;

namespace {

const pg::statement slow{"test_cancel_slow", "SELECT pg_sleep($1::float8), $2::int4"};
const pg::statement echo{"test_cancel_echo", "SELECT $1::int4"};
using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

}  // namespace

TEST_CASE("a waiting acquire is cancelled and leaves the queue") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    diagnostics d1, d2;
    auto [e1, held] = co_await pool.async_acquire(std::chrono::seconds(5), d1, asio::as_tuple(asio::use_awaitable));
    REQUIRE(!e1);
    asio::cancellation_signal signal;
    error_code got = errc::pool_timeout;
    bool done = false;
    const auto started = clock_type::now();
    pool.async_acquire(std::chrono::seconds(5), d2,
                       asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, pg::pooled_connection c) {
                         got = ec;
                         done = true;
                         CHECK(!c.valid());
                       }));
    co_await test::sleep_for(std::chrono::milliseconds(20));
    CHECK(!done);
    signal.emit(asio::cancellation_type::terminal);
    while (!done) co_await test::yield();
    CHECK(got == asio::error::operation_aborted);
    CHECK(ms_since(started) < 1000);  // not the 5 s acquire timeout
    CHECK(pool.stats().waiting == 0);
    held = pg::pooled_connection{};  // the pool serves again
    auto [e3, r] = co_await pool.async_query(echo, pg::params(7), {}, d1, asio::as_tuple(asio::use_awaitable));
    CHECK(!e3);
    CHECK(r.get<int>(0, 0) == 7);
  });
}

TEST_CASE("a query in flight is cancelled at once, and the pipeline's other callers and the connection are unaffected") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    diagnostics warm;
    co_await pool.async_query(echo, pg::params(0), {}, warm, asio::as_tuple(asio::use_awaitable));

    // Three callers in one tick share the one connection's pipeline: slow, cancelled, after.
    asio::cancellation_signal signal;
    diagnostics d[3];
    error_code ecs[3];
    int values[3] = {-1, -1, -1};
    double took[3] = {0, 0, 0};
    int done = 0;
    const auto started = clock_type::now();
    auto record = [&](int i) {
      return [&, i](error_code ec, pg::result r) {
        ecs[i] = ec;
        if (!ec) values[i] = *r.get<int>(0, 1);
        took[i] = ms_since(started);
        ++done;
      };
    };
    pool.async_query(slow, pg::params(0.3, 1), {}, d[0], record(0));
    pool.async_query(slow, pg::params(0.3, 2), {}, d[1], asio::bind_cancellation_slot(signal.slot(), record(1)));
    pool.async_query(slow, pg::params(0.0, 3), {}, d[2], record(2));
    co_await test::sleep_for(std::chrono::milliseconds(50));  // all three sent by now
    signal.emit(asio::cancellation_type::terminal);
    while (done < 3) co_await test::sleep_for(std::chrono::milliseconds(5));

    CHECK(ecs[1] == asio::error::operation_aborted);
    CHECK(took[1] < 250);  // answered at cancellation, not after its statement ran
    CHECK(!ecs[0]);
    CHECK(values[0] == 1);
    CHECK(!ecs[2]);
    CHECK(values[2] == 3);  // its result was not confused with the cancelled one's
    CHECK(pool.stats().connected == 1);
    auto [e, r] = co_await pool.async_query(echo, pg::params(9), {}, warm, asio::as_tuple(asio::use_awaitable));
    CHECK(!e);
    CHECK(r.get<int>(0, 0) == 9);
  });
}

TEST_CASE("a query waiting for a connection is cancelled and never sent") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(1));
    pool.start();
    diagnostics d, dq;
    auto [e1, held] = co_await pool.async_acquire(std::chrono::seconds(5), d, asio::as_tuple(asio::use_awaitable));
    REQUIRE(!e1);
    asio::cancellation_signal signal;
    error_code got;
    bool done = false;
    pool.async_query(echo, pg::params(1), {}, dq, asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, pg::result) {
      got = ec;
      done = true;
    }));
    co_await test::sleep_for(std::chrono::milliseconds(20));
    CHECK(pool.stats().waiting == 1);
    signal.emit(asio::cancellation_type::terminal);
    while (!done) co_await test::yield();
    CHECK(got == asio::error::operation_aborted);
    CHECK(pool.stats().waiting == 0);
    const auto before = pool.stats().statements;
    held = pg::pooled_connection{};
    co_await test::sleep_for(std::chrono::milliseconds(50));
    CHECK(pool.stats().statements == before);  // the cancelled query was never sent
  });
}

TEST_CASE("a lone statement the server is running is answered at cancellation") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::connection_pool pool(ex, test::params(2));
    pool.start();
    diagnostics d1, d2;
    asio::steady_timer timer(ex, std::chrono::milliseconds(50));
    const auto started = clock_type::now();
    // Race a 2-second statement against a 50 ms timer: the statement must give way.
    bool timer_won = false;
    asio::cancellation_signal signal;
    pool.async_query(slow, pg::params(2.0, 1), {}, d1, asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, pg::result) {
      CHECK(ec == asio::error::operation_aborted);
      CHECK(timer_won);
    }));
    co_await timer.async_wait(asio::use_awaitable);
    timer_won = true;
    signal.emit(asio::cancellation_type::terminal);
    co_await test::sleep_for(std::chrono::milliseconds(10));
    CHECK(ms_since(started) < 1000);
    auto [e, r] = co_await pool.async_query(echo, pg::params(5), {}, d2, asio::as_tuple(asio::use_awaitable));
    CHECK(!e);
  });
}
