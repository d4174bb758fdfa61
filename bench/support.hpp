// What the C++ benchmark programs share: wall-clock milliseconds, medians, and a wait for
// a number of callback completions.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

inline double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Waits for `n` callback completions; wait() throws `what` when any of them failed.
class countdown {
 public:
  countdown(asio::any_io_executor ex, std::size_t n, std::string what)
      : timer_(ex, clock_type::time_point::max()), left_(n), what_(std::move(what)) {}
  void done(bool ok) {
    failed_ |= !ok;
    if (--left_ == 0) timer_.cancel();
  }
  asio::awaitable<void> wait() {
    if (left_ > 0) co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (failed_) throw std::runtime_error(what_);
  }

 private:
  asio::steady_timer timer_;
  std::size_t left_;
  bool failed_ = false;
  std::string what_;
};

}  // namespace bench
