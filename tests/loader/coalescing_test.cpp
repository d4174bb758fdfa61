#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <set>

using namespace dataloader;
namespace asio = boost::asio;

TEST_CASE("coalesces loads issued in one tick into one batch call") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls});
  std::vector<int> got(5, -1);
  for (int i = 0; i < 5; ++i)
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> { got[i] = co_await l.load(i + 1); },
                   asio::detached);
  io.run();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(got == std::vector<int>{10, 20, 30, 40, 50});
}

TEST_CASE("loads in later ticks form later batches") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls});
    CHECK(co_await l.load(1) == 10);
    CHECK(co_await l.load(2) == 20);
  });
  CHECK(calls == std::vector<std::vector<int>>{{1}, {2}});
}

TEST_CASE("batch_window gathers loads across ticks") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader_options opts;
  opts.batch_window = std::chrono::milliseconds(50);
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls}, opts);
  for (int i = 0; i < 3; ++i)
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      co_await test::sleep_for(std::chrono::milliseconds(5 * i));  // three different ticks
      CHECK(co_await l.load(i) == i * 10);
    }, asio::detached);
  io.run();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == std::vector<int>{0, 1, 2});
}

TEST_CASE("batch_window dispatches a full batch without waiting") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader_options opts;
  opts.batch_window = std::chrono::seconds(30);
  opts.max_batch_size = 4;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls}, opts);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i)
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> { co_await l.load(i); }, asio::detached);
  io.run();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].size() == 4);
}

// A consumer that is saturated while the test says so, and counts what it is asked.
struct fake_hold {
  bool saturated = false;
  int asked = 0;
  std::vector<std::function<void()>> goes;
  loader_options options(std::size_t max_batch_size = 1000) {
    loader_options o;
    o.max_batch_size = max_batch_size;
    o.hold = [this](std::function<void()> go) {
      ++asked;
      if (!saturated) return false;
      goes.push_back(std::move(go));
      return true;
    };
    return o;
  }
  void free_up(asio::io_context& io) {
    saturated = false;
    for (auto& g : std::exchange(goes, {})) asio::post(io, std::move(g));
  }
};

TEST_CASE("smart batching: with the consumer free, a batch goes at the end of its tick") {
  std::vector<std::vector<int>> calls;
  fake_hold hold;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls}, hold.options());
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    CHECK(co_await l.load(1) == 10);
    CHECK(co_await l.load(2) == 20);
  }, asio::detached);
  io.run();
  CHECK(calls == std::vector<std::vector<int>>{{1}, {2}});
  CHECK(hold.asked == 2);
}

TEST_CASE("smart batching: while the consumer is saturated, a ready batch keeps gathering across ticks") {
  std::vector<std::vector<int>> calls;
  fake_hold hold;
  hold.saturated = true;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls}, hold.options());
  int done = 0;
  for (int tick = 0; tick < 3; ++tick) {
    for (int i = 0; i < 2; ++i)
      asio::co_spawn(io, [&, k = tick * 2 + i]() -> asio::awaitable<void> {
        CHECK(co_await l.load(k) == k * 10);
        ++done;
      }, asio::detached);
    test::step(io);  // the tick ends; the batch is ready but held
    CHECK(calls.empty());
  }
  CHECK(hold.goes.size() == 1);  // asked once, then waiting for its go
  hold.free_up(io);
  test::finish(io);
  CHECK(calls == std::vector<std::vector<int>>{{0, 1, 2, 3, 4, 5}});
  CHECK(done == 6);
  CHECK(l.stats().batches == 1);
}

TEST_CASE("smart batching: a batch that fills up goes at once, saturated or not") {
  std::vector<std::vector<int>> calls;
  fake_hold hold;
  hold.saturated = true;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls}, hold.options(3));
  for (int k = 0; k < 7; ++k)
    asio::co_spawn(io, [&, k]() -> asio::awaitable<void> { co_await l.load(k); }, asio::detached);
  test::step(io);
  // 7 keys in one tick: two full batches went, the seventh key waits for the consumer.
  CHECK(calls == std::vector<std::vector<int>>{{0, 1, 2}, {3, 4, 5}});
  hold.free_up(io);
  test::finish(io);
  CHECK(calls.size() == 3);
  CHECK(calls[2] == std::vector<int>{6});
}

TEST_CASE("smart batching: destroying a loader with a held batch aborts its waiters") {
  fake_hold hold;
  hold.saturated = true;
  asio::io_context io;
  std::vector<std::vector<int>> calls;
  auto l = std::make_unique<loader<int, int>>(io.get_executor(), test::recording_batch{&calls}, hold.options());
  error_code got;
  l->async_load(1, [&](error_code ec, int) { got = ec; });
  test::step(io);
  l.reset();
  hold.free_up(io);  // the go arrives after the loader is gone: nothing happens
  test::finish(io);
  CHECK(got == asio::error::operation_aborted);
  CHECK(calls.empty());
}

TEST_CASE("splits more keys than max_batch_size into concurrent calls") {
  asio::io_context io;
  test::held_batches held;
  loader_options opts;
  opts.max_batch_size = 3;
  loader<int, int> l(io.get_executor(), held.function(), opts);
  std::vector<int> keys{1, 2, 3, 4, 5, 6, 7};
  std::vector<result<int>> got;
  l.async_load_many(keys, [&](error_code ec, std::vector<result<int>> r) {
    CHECK(!ec);
    got = std::move(r);
  });
  test::step(io);
  // ceil(7 / 3) = 3 calls, all started before any of them completed.
  REQUIRE(held.calls.size() == 3);
  CHECK(held.calls[0].keys == std::vector<int>{1, 2, 3});
  CHECK(held.calls[1].keys == std::vector<int>{4, 5, 6});
  CHECK(held.calls[2].keys == std::vector<int>{7});
  for (std::size_t i : {2u, 0u, 1u}) held.answer(i);
  test::finish(io);
  REQUIRE(got.size() == 7);
  for (std::size_t i = 0; i < 7; ++i) CHECK(got[i].value() == keys[i] * 10);
}

TEST_CASE("folds duplicate keys with the cache off") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls});
  int answers = 0;
  for (int i = 0; i < 4; ++i)
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      CHECK(co_await l.load(7) == 70);
      ++answers;
    }, asio::detached);
  io.run();
  CHECK(answers == 4);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == std::vector<int>{7});
  CHECK(l.stats().dedup_hits == 3);
}

TEST_CASE("load_many returns per-key results in key order, duplicates folded") {
  std::vector<std::vector<int>> calls;
  test::run([&](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, test::recording_batch{&calls});
    std::vector<int> keys{3, 1, 3, 2};  // GCC 12: no braced temporaries across co_await
    auto r = co_await l.load_many(keys);
    REQUIRE(r.size() == 4);
    CHECK(r[0].value() == 30);
    CHECK(r[1].value() == 10);
    CHECK(r[2].value() == 30);
    CHECK(r[3].value() == 20);
    auto none = co_await l.load_many(std::vector<int>{});
    CHECK(none.empty());
  });
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == std::vector<int>{3, 1, 2});
}

TEST_CASE("joins a key already in flight") {
  asio::io_context io;
  test::held_batches held;
  loader<int, int> l(io.get_executor(), held.function());
  int first = 0, second = 0;
  l.async_load(5, [&](error_code ec, int v) { CHECK(!ec); first = v; });
  test::step(io);
  REQUIRE(held.calls.size() == 1);
  l.async_load(5, [&](error_code ec, int v) { CHECK(!ec); second = v; });
  test::step(io);
  CHECK(held.calls.size() == 1);  // joined, not sent again
  held.answer(0);
  test::finish(io);
  CHECK(first == 50);
  CHECK(second == 50);
  CHECK(l.stats().dedup_hits == 1);
}

TEST_CASE("a load after clear does not join the batch in flight") {
  asio::io_context io;
  test::held_batches held;
  loader<int, int> l(io.get_executor(), held.function());
  int before = 0, after = 0;
  l.async_load(5, [&](error_code, int v) { before = v; });
  test::step(io);
  REQUIRE(held.calls.size() == 1);
  l.clear(5);  // e.g. a write of key 5 committed
  l.async_load(5, [&](error_code, int v) { after = v; });
  test::step(io);
  REQUIRE(held.calls.size() == 2);  // a fresh batch, sent after the clear
  held.answer(1, 100);              // the new value
  held.answer(0, 10);               // the old batch completes last
  test::finish(io);
  CHECK(before == 50);
  CHECK(after == 500);
}

TEST_CASE("a load after clear still folds into a batch not yet sent") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls});
  l.async_load(5, [](error_code, int) {});
  l.clear(5);  // nothing sent yet: the pending key will be read after the clear anyway
  l.async_load(5, [](error_code, int) {});
  io.run();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == std::vector<int>{5});
}

TEST_CASE("accepts coroutine batch functions") {
  test::run([](auto ex) -> asio::awaitable<void> {
    loader<int, std::string> l(ex, [](std::span<const int> keys) -> asio::awaitable<std::vector<std::string>> {
      co_await test::yield();
      std::vector<std::string> out;
      for (int k : keys) out.push_back("v" + std::to_string(k));
      co_return out;
    });
    std::vector<int> keys{1, 2};
    auto r = co_await l.load_many(keys);
    CHECK(r[0].value() == "v1");
    CHECK(r[1].value() == "v2");
  });
}

TEST_CASE("async_load takes callbacks, deferred and use_awaitable tokens") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls});
  int by_callback = 0, by_deferred = 0, by_awaitable = 0;
  l.async_load(1, [&](error_code ec, int v) { CHECK(!ec); by_callback = v; });
  auto op = l.async_load(2, asio::deferred);
  std::move(op)([&](error_code ec, int v) { CHECK(!ec); by_deferred = v; });
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    by_awaitable = co_await l.async_load(3, asio::use_awaitable);
  }, asio::detached);
  io.run();
  CHECK(by_callback == 10);
  CHECK(by_deferred == 20);
  CHECK(by_awaitable == 30);
  CHECK(calls.size() == 1);  // all three in one tick
}
