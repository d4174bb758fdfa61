// One libpq connection in non-blocking pipeline mode, driven by Asio waits on its socket.
//
// Invariants:
//   - every callback checks `generation_`: a callback armed before a reconnect or close
//     finds a different generation and does nothing;
//   - in_flight_ holds sent groups in send order; libpq returns their results in that
//     order, each group ending with its PGRES_PIPELINE_SYNC;
//   - a read wait is armed whenever the connection is up, so a server that goes away is
//     noticed even when the connection is idle.
#pragma once

#include "request.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <concepts>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

struct pg_conn;
struct pg_cancel;

namespace dataloader::pg::detail {

class pool_impl;

class connection : public std::enable_shared_from_this<connection> {
 public:
  enum class state { idle, connecting, ready, broken, closed };

  explicit connection(pool_impl& pool);
  ~connection();

  void connect();
  void reconnect_later();
  void submit(request_ptr r);
  // The group with this id, queued or in flight here, or null.
  request* find(std::uint64_t id) const noexcept;
  // Takes a group that is queued but not yet sent out of the queue (the caller now owns
  // it); false when it is not queued here.
  bool withdraw(std::uint64_t id) noexcept;
  void close(error_code ec, const std::string& message);

  state current_state() const noexcept { return state_; }
  bool ready() const noexcept { return state_ == state::ready; }
  std::size_t load() const noexcept { return queued_.size() + in_flight_.size(); }
  // The group the server is executing is past its deadline (answered, its cancel sent or
  // due): work sent here now would wait on a server that may not be answering.
  bool stalled() const noexcept { return !in_flight_.empty() && in_flight_.front()->timed_out; }
  int failed_attempts() const noexcept { return failed_attempts_; }
  bool leased = false;

 private:
  void poll_connect();
  void wait_socket(bool for_write, void (connection::*next)());
  void sync_socket();
  void on_connect_timeout();
  void on_connected();
  void connect_failed(const std::string& message);
  void schedule_flush();
  void flush();
  bool send(request& r);
  void push_output();
  void arm_read();
  void on_readable();
  void process_results();
  void finish_head();
  // The current op of `r` has returned all its results: reports it when it was slow.
  void op_answered(request& r);
  void arm_deadline();
  void on_deadline();
  void lose(const std::string& message);
  void teardown();
  void release_socket();

  // Wraps a completion handler of this connection's waits and posts: it runs only if the
  // connection was not torn down or reconnected since (same generation), and with the
  // connection and its pool kept alive, since completing a request may destroy the pool.
  // (A connection whose pool is gone was closed first, so its callbacks stop at the
  // generation check.)
  template <class F>
  auto guarded(F f) {
    return [self = shared_from_this(), pool = pool_, gen = generation_, f = std::move(f)](auto... args) mutable
               requires std::invocable<F&, decltype(args)...>
    {
      if (gen != self->generation_) return;
      const auto keep_pool = pin(pool);
      f(args...);
    };
  }
  static std::shared_ptr<pool_impl> pin(pool_impl* pool);

  pool_impl* pool_;
  asio::strand<asio::any_io_executor> ex_;
  pg_conn* conn_ = nullptr;
  std::shared_ptr<pg_cancel> cancel_;
  std::optional<asio::posix::stream_descriptor> socket_;
  int socket_fd_ = -1;
  asio::steady_timer connect_timer_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer retry_timer_;
  state state_ = state::idle;
  std::uint64_t generation_ = 0;
  bool ever_connected_ = false;
  int failed_attempts_ = 0;
  std::chrono::milliseconds backoff_;
  bool flush_posted_ = false;
  bool reading_ = false;
  bool writing_ = false;
  std::deque<request_ptr> queued_;
  std::deque<request_ptr> in_flight_;
  struct round_trip {
    const request* last;
    clock::time_point started;
  };
  std::deque<round_trip> round_trips_;
  clock::time_point last_answer_at_;  // when the latest op's results ended here
  std::string server_;                // host:port, for slow-statement reports
  std::unordered_set<std::string> prepared_;
  std::unordered_set<std::string> stale_;  // prepared, but to be deallocated and prepared again
};

}  // namespace dataloader::pg::detail
