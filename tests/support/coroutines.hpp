// Running coroutines in tests: one io_context per test, run to completion.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>

namespace test {

namespace asio = boost::asio;

// Runs `f(executor)` to completion on a fresh io_context; rethrows what it threw.
template <class F>
void run(F&& f) {
  asio::io_context io;
  std::exception_ptr error;
  asio::co_spawn(io, f(io.get_executor()), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Polls `done` every 10 ms until it holds or 5 s have passed; the caller checks which.
template <class F>
asio::awaitable<void> wait_until(F done) {
  for (int i = 0; i < 500 && !done(); ++i) co_await sleep_for(std::chrono::milliseconds(10));
}

inline asio::awaitable<void> yield() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

}  // namespace test
