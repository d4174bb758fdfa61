// Per-key results, whole-call failures, and batch functions that break the contract.
#include "support.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>

using namespace dataloader;
namespace asio = boost::asio;

namespace {

// Loads `keys` in one tick; returns one (error_code, value, message) per key.
struct outcome {
  error_code ec;
  int value = 0;
  std::string message;
};

template <class Loader>
std::vector<outcome> load_all(asio::io_context& io, Loader& l, std::vector<int> keys) {
  std::vector<outcome> out(keys.size());
  std::vector<diagnostics> diags(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i)
    l.async_load(keys[i], diags[i], [&out, i](error_code ec, int v) {
      out[i].ec = ec;
      out[i].value = v;
    });
  test::finish(io);
  for (std::size_t i = 0; i < keys.size(); ++i) out[i].message = diags[i].message();
  return out;
}

}  // namespace

TEST_CASE("a key can fail alone") {
  asio::io_context io;
  loader<int, int> l(io.get_executor(), [](std::span<const int> keys) {
    std::vector<result<int>> out;
    for (int k : keys)
      if (k == 2) out.emplace_back(failure{errc::invalid_argument, "key 2 is odd one out"});
      else out.emplace_back(k);
    return out;
  });
  auto r = load_all(io, l, {1, 2, 3});
  CHECK(!r[0].ec);
  CHECK(r[0].value == 1);
  CHECK(r[1].ec == errc::invalid_argument);
  CHECK(r[1].message == "key 2 is odd one out");
  CHECK(!r[2].ec);
  CHECK(r[2].value == 3);
  CHECK(l.stats().errors == 1);
}

TEST_CASE("a failed call fails every waiter of that call and no other") {
  asio::io_context io;
  test::held_batches held;
  loader_options opts;
  opts.max_batch_size = 2;
  loader<int, int> l(io.get_executor(), held.function(), opts);
  std::vector<outcome> out(4);
  for (int k = 0; k < 4; ++k)
    l.async_load(k, [&out, k](error_code ec, int v) { out[k] = {ec, v, {}}; });
  test::step(io);
  REQUIRE(held.calls.size() == 2);
  held.calls[0].done.fail(errc::batch_failed, "connection refused");
  held.answer(1);
  test::finish(io);
  CHECK(out[0].ec == errc::batch_failed);
  CHECK(out[1].ec == errc::batch_failed);
  CHECK(!out[2].ec);
  CHECK(out[2].value == 20);
  CHECK(!out[3].ec);
}

TEST_CASE("map-form batch function resolves a missing key as not_found") {
  asio::io_context io;
  loader<int, int> l(io.get_executor(), [](std::span<const int> keys) {
    std::map<int, int> found;
    for (int k : keys)
      if (k != 404) found[k] = k + 1;
    return found;
  });
  auto r = load_all(io, l, {1, 404});
  CHECK(!r[0].ec);
  CHECK(r[0].value == 2);
  CHECK(r[1].ec == errc::not_found);
  CHECK(r[1].message == "batch function returned no value for this key");
}

TEST_CASE("load throws load_error naming the problem") {
  test::run([](auto ex) -> asio::awaitable<void> {
    loader<int, int> l(ex, [](std::span<const int>) { return std::map<int, int>{}; });
    try {
      co_await l.load(1);
      FAIL("expected load_error");
    } catch (const load_error& e) {
      CHECK(e.code() == errc::not_found);
      CHECK(std::string(e.what()).find("no value for this key") != std::string::npos);
    }
  });
}

TEST_CASE("wrong result count gives every waiter a clear error") {
  asio::io_context io;
  loader<int, int> l(io.get_executor(), [](std::span<const int>) { return std::vector<int>{1}; });
  auto r = load_all(io, l, {1, 2, 3});
  for (const auto& o : r) {
    CHECK(o.ec == errc::wrong_result_count);
    CHECK(o.message == "batch function returned 1 results for 3 keys; it must return one "
                       "result per key, in key order");
  }
  CHECK(l.stats().contract_violations == 1);
}

TEST_CASE("a throwing batch function gives every waiter a clear error") {
  asio::io_context io;
  loader<int, int> l(io.get_executor(), [](std::span<const int>) -> std::vector<int> {
    throw std::runtime_error("database on fire");
  });
  auto r = load_all(io, l, {1, 2});
  for (const auto& o : r) {
    CHECK(o.ec == errc::batch_threw);
    CHECK(o.message == "batch function threw: database on fire");
  }
}

TEST_CASE("a throwing coroutine batch function gives every waiter a clear error") {
  asio::io_context io;
  loader<int, int> l(io.get_executor(),
                     [](std::span<const int>) -> asio::awaitable<std::vector<int>> {
                       co_await test::yield();
                       throw std::runtime_error("lost mid-flight");
                     });
  auto r = load_all(io, l, {1, 2});
  for (const auto& o : r) {
    CHECK(o.ec == errc::batch_threw);
    CHECK(o.message == "batch function threw: lost mid-flight");
  }
}

TEST_CASE("a callback batch function that throws after taking its completion fails cleanly") {
  asio::io_context io;
  loader<int, int> l(io.get_executor(), [](std::span<const int>, batch_completion<int>) {
    throw std::logic_error("bad state");
  });
  auto r = load_all(io, l, {1});
  CHECK(r[0].ec == errc::batch_threw);
  CHECK(r[0].message == "batch function threw: bad state");
}

TEST_CASE("a completion invoked twice is refused and counted") {
  asio::io_context io;
  error_code second;
  loader<int, int> l(io.get_executor(), [&](std::span<const int> keys, batch_completion<int> done) {
    std::vector<result<int>> out(keys.begin(), keys.end());
    CHECK(!done(out));
    second = done(out);
  });
  auto r = load_all(io, l, {4, 5});
  CHECK(second == errc::batch_completed_twice);
  CHECK(!r[0].ec);
  CHECK(r[0].value == 4);
  CHECK(r[1].value == 5);
  CHECK(l.stats().contract_violations == 1);
}

TEST_CASE("a dropped completion fails every waiter instead of hanging") {
  asio::io_context io;
  loader<int, int> l(io.get_executor(), [](std::span<const int>, batch_completion<int>) {});
  auto r = load_all(io, l, {1, 2});
  for (const auto& o : r) {
    CHECK(o.ec == errc::batch_abandoned);
    CHECK(o.message == "batch function dropped its completion without calling it");
  }
}

TEST_CASE("a completion dropped later, outside the call, fails every waiter") {
  asio::io_context io;
  test::held_batches held;
  loader<int, int> l(io.get_executor(), held.function());
  auto r = std::vector<outcome>(1);
  l.async_load(1, [&](error_code ec, int) { r[0].ec = ec; });
  test::step(io);
  held.calls.clear();  // destroys the completion
  test::finish(io);
  CHECK(r[0].ec == errc::batch_abandoned);
}

TEST_CASE("a completion invoked from another thread is delivered on the loader's executor") {
  asio::io_context io;
  std::vector<std::thread> threads;
  auto guard = asio::make_work_guard(io);
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id handled_on;
  loader<int, int> l(io.get_executor(), [&](std::span<const int> keys, batch_completion<int> done) {
    threads.emplace_back([k = keys[0], d = std::move(done)]() mutable {
      std::vector<result<int>> out{result<int>(k * 2)};
      d(std::move(out));
    });
  });
  int value = 0;
  l.async_load(21, [&](error_code, int v) {
    value = v;
    handled_on = std::this_thread::get_id();
    guard.reset();
  });
  io.run();
  for (auto& t : threads) t.join();
  CHECK(value == 42);
  CHECK(handled_on == loop_thread);
}
