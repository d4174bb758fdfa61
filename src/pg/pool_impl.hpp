// The pool's state, on its strand: connections, requests waiting for one, lease waiters,
// and counters.
#pragma once

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "request.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

namespace dataloader::pg::detail {

class connection;
using counter = dataloader::detail::single_writer_counter;

struct pool_counters {
  counter statements, prepares, round_trips, errors, timeouts, retries, reconnects,
      connect_failures, connected, in_use, waiting, round_trip_us_sum;
  std::array<counter, round_trip_bucket_bounds_us.size()> round_trip_histogram;

  void record_round_trip(clock::duration d) {
    const auto us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    round_trips.add();
    round_trip_us_sum.add(us);
    for (std::size_t i = 0; i < round_trip_bucket_bounds_us.size(); ++i)
      if (us <= round_trip_bucket_bounds_us[i]) {
        round_trip_histogram[i].add();
        break;
      }
  }
};

class pool_impl : public std::enable_shared_from_this<pool_impl> {
 public:
  using executor_type = asio::strand<asio::any_io_executor>;

  pool_impl(asio::any_io_executor ex, pool_params params);
  ~pool_impl();

  const executor_type& executor() const noexcept { return ex_; }
  const pool_params& config() const noexcept { return params_; }
  pool_counters& counters() noexcept { return counters_; }
  asio::thread_pool& cancel_thread() noexcept { return cancel_thread_; }

  // All of the following run on the strand.
  void start();
  void close();
  void route(request_ptr r);
  // Retries a lost read once, else answers the caller (unless already answered).
  void complete(request_ptr r);
  // Answers the caller of `r` now with its ec/results; later completion drops them.
  void answer(request& r);
  void acquire(lease_ptr w);
  // Fails every waiting acquire with errc::connection_lost (the database is down).
  void refuse_waiting_leases(const std::string& message);
  void release(connection* c);
  // A cancellation from a caller's slot: the group or lease with this id, wherever it is.
  void cancel(std::uint64_t id);
  std::uint64_t next_id() noexcept { return ++last_id_; }

  // Runs `f` on the strand: inline when the caller is already on it, marking that time as
  // inside an initiating call (completions found then are posted, never invoked inline).
  template <class F>
  void initiate(F&& f) {
    if (!ex_.running_in_this_thread()) return asio::post(ex_, std::forward<F>(f));
    ++initiating_;
    f();
    --initiating_;
  }

  // From connections.
  void on_connected(connection& c, bool reconnect);
  void on_connect_failed(connection& c, const std::string& message);
  void on_connection_lost(connection& c, std::deque<request_ptr> unsent,
                          std::deque<request_ptr> in_flight, const std::string& message);
  void on_load_changed();

  // Counts a slow statement and passes it to pool_params::on_slow_statement.
  void report_slow(const slow_statement& s);
  std::map<std::string, std::uint64_t> slow_statements() const;

  bool saturated() const;
  void when_unsaturated(std::function<void()> f);

 private:
  connection* pick();
  bool database_down() const;
  void serve_waiters();
  void arm_wait_timer();
  void on_wait_timer();
  void fail(request_ptr r, error_code ec, std::string message);
  void grant(lease_ptr w, connection& c);
  void refuse(lease_ptr w, error_code ec, const std::string& message);
  void update_gauges();

  executor_type ex_;
  pool_params params_;
  pool_counters counters_;
  std::vector<std::shared_ptr<connection>> conns_;
  std::vector<std::function<void()>> unsaturated_waiters_;  // posted when not saturated()
  std::deque<request_ptr> waiting_;
  std::deque<lease_ptr> lease_waiters_;
  std::atomic<std::uint64_t> last_id_{0};
  int initiating_ = 0;
  connection* tick_target_ = nullptr;
  bool tick_reset_posted_ = false;
  asio::steady_timer wait_timer_;
  std::string last_error_;
  mutable std::mutex slow_mutex_;  // slow_ is read by stats() from any thread
  std::map<std::string, std::uint64_t> slow_;
  bool started_ = false;
  bool closed_ = false;
  asio::thread_pool cancel_thread_{1};  // PQcancel blocks: never on the event loop
};

}  // namespace dataloader::pg::detail
