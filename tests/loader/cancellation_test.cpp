// Per-operation cancellation and loader destruction.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

using namespace dataloader;
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

TEST_CASE("a cancelled load resumes with operation_aborted while others get the value") {
  asio::io_context io;
  test::held_batches held;
  loader<int, int> l(io.get_executor(), held.function());
  asio::cancellation_signal signal;
  error_code cancelled_ec;
  int other = 0;
  l.async_load(1, asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, int) { cancelled_ec = ec; }));
  l.async_load(1, [&](error_code ec, int v) { CHECK(!ec); other = v; });
  test::step(io);
  REQUIRE(held.calls.size() == 1);
  signal.emit(asio::cancellation_type::terminal);
  test::step(io);
  CHECK(cancelled_ec == asio::error::operation_aborted);
  held.answer(0);
  test::finish(io);
  CHECK(other == 10);
  CHECK(l.stats().cancelled == 1);
}

TEST_CASE("racing a load against a timer cancels the load") {
  asio::io_context io;
  test::held_batches held;
  loader<int, int> l(io.get_executor(), held.function());
  bool timer_won = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto r = co_await (l.load(1) || test::sleep_for(std::chrono::milliseconds(10)));
    timer_won = r.index() == 1;
  }, asio::detached);
  test::finish(io);
  CHECK(timer_won);
  CHECK(l.stats().cancelled == 1);
  REQUIRE(held.calls.size() == 1);
  held.answer(0);  // the batch may still finish; nobody is waiting
  test::finish(io);
}

TEST_CASE("a key whose waiters were all cancelled before dispatch is dropped from the batch") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls});
  asio::cancellation_signal s1, s2;
  error_code ec1, ec2;
  l.async_load(1, asio::bind_cancellation_slot(s1.slot(), [&](error_code ec, int) { ec1 = ec; }));
  l.async_load(1, asio::bind_cancellation_slot(s2.slot(), [&](error_code ec, int) { ec2 = ec; }));
  l.async_load(2, [](error_code, int) {});
  // Initiation has registered the waiters (dispatch is inline); the batch is not sent yet.
  s1.emit(asio::cancellation_type::terminal);
  s2.emit(asio::cancellation_type::terminal);
  io.run();
  CHECK(ec1 == asio::error::operation_aborted);
  CHECK(ec2 == asio::error::operation_aborted);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == std::vector<int>{2});
}

TEST_CASE("cancelling load_many aborts the keys still waiting") {
  asio::io_context io;
  test::held_batches held;
  loader_options cached;
  cached.cache = cache_mode::unbounded;
  loader<int, int> l(io.get_executor(), held.function(), cached);
  l.prime(1, 11);
  asio::cancellation_signal signal;
  std::vector<result<int>> got;
  error_code ec;
  std::vector<int> keys{1, 2};
  l.async_load_many(keys, asio::bind_cancellation_slot(signal.slot(), [&](error_code e, std::vector<result<int>> r) {
                      ec = e;
                      got = std::move(r);
                    }));
  test::step(io);
  signal.emit(asio::cancellation_type::terminal);
  test::finish(io);
  CHECK(ec == asio::error::operation_aborted);
  REQUIRE(got.size() == 2);
  CHECK(got[0].value() == 11);
  CHECK(got[1].error() == asio::error::operation_aborted);
}

TEST_CASE("destroying the loader aborts waiting loads") {
  asio::io_context io;
  test::held_batches held;
  error_code ec;
  {
    loader<int, int> l(io.get_executor(), held.function());
    l.async_load(1, [&](error_code e, int) { ec = e; });
    test::step(io);
  }
  test::finish(io);
  CHECK(ec == asio::error::operation_aborted);
  held.answer(0);  // completing a batch of a destroyed loader is harmless
  test::finish(io);
}

TEST_CASE("pending handlers are freed when the io_context dies first") {
  // Checked by the sanitizer build: no leak, no use after free.
  std::vector<std::vector<int>> calls;
  auto io = std::make_unique<asio::io_context>();
  auto l = std::make_unique<loader<int, int>>(io->get_executor(), test::recording_batch{&calls});
  bool called = false;
  l->async_load(1, [&](error_code, int) { called = true; });
  l.reset();   // not on the executor: the shutdown job is queued
  io.reset();  // never run: destroying the queue destroys the core and frees its waiters
  CHECK(!called);
}
