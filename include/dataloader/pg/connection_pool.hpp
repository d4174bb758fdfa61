// An asynchronous PostgreSQL connection pool on libpq, driven by Asio.
//
// Every connection runs in pipeline mode. Statement groups submitted during one tick are
// routed to one connection and leave together, each group followed by its own sync
// point: one round trip for the tick, and a failing group aborts only itself (each group
// runs in its own implicit transaction). Statements are prepared once per connection and
// then executed by name; values always travel as parameters.
//
// A broken connection is replaced in the background with capped exponential backoff;
// callers never get a dead connection. When every connection's latest attempt failed,
// queries and acquires fail at once with errc::connection_lost and the connection error.
// A group sent on a connection that then breaks completes with errc::outcome_unknown (it
// may or may not have been applied); reads may ask to be resent once on another
// connection instead (query_options::retry_on_connection_loss); writes never are.
// A caller waits no longer than its group's deadline: past it, the group completes with
// errc::timeout at once (its results are dropped when they arrive) and the server is
// asked to cancel it through libpq's cancel request (sent from a helper thread: PQcancel
// blocks); a server that does not answer within 2 s more is presumed gone, and the
// connection is dropped and replaced. So a paused or unreachable server costs a caller
// at most the deadline (or the acquire timeout, while waiting for a connection).
//
// Operations:
//   - Thread safety: all state lives on the pool's strand; every member function may be
//     called from any thread. Completion handlers run on their associated executor (by
//     default the pool's strand).
//   - Lifetimes: a statement passed by reference, and a diagnostics object, must outlive
//     the operation; parameters are copied. The pool must outlive its operations and
//     leases; destroying it (or close()) completes pending work with errc::pool_closed.
//   - Cancellation (per operation, through the handler's cancellation slot: any type
//     cancels): a group still waiting for a connection, or queued but not yet sent, is
//     dropped and never sent; a group already sent completes at once with
//     asio::error::operation_aborted and its results are discarded when they arrive (the
//     server still runs it, so a cancelled write may or may not be applied); the
//     connection stays usable, and other callers' groups on it are unaffected. A waiting
//     acquire is removed from the queue.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/error.hpp"
#include "dataloader/pg/pool_params.hpp"
#include "dataloader/pg/pool_stats.hpp"
#include "dataloader/pg/result.hpp"
#include "dataloader/pg/statement.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

namespace dataloader::pg {

namespace asio = boost::asio;

struct query_options {
  // Resend once on another connection if this one died before answering. Only for
  // statements that are safe to run twice (reads).
  bool retry_on_connection_loss = false;
  // Deadline of the group; 0: the pool's statement_timeout.
  std::chrono::milliseconds timeout{0};
  // After the group's sync point (its commit), in the same round trip, run
  // `SELECT pg_current_wal_insert_lsn()::text` (with a sync point of its own) and append its
  // one-row result to the group's results: a write-ahead-log position at or after the end
  // of the group's commit record. Only on a primary (a standby refuses the function).
  bool position_after_commit = false;
};

class connection_pool;
class pooled_connection;

namespace detail {
class pool_impl;
class connection;

using group_handler = asio::any_completion_handler<void(error_code, std::vector<result>)>;
using query_handler = asio::any_completion_handler<void(error_code, result)>;
using lease_handler = asio::any_completion_handler<void(error_code, pooled_connection)>;

// Starts a statement group on the pool (or on `pinned`, a leased connection). Completes
// through `handler`, which is either a group or a single-statement handler.
void submit(const std::shared_ptr<pool_impl>& pool, std::vector<query> queries, query_options options,
            diagnostics* diag, std::variant<group_handler, query_handler> handler, connection* pinned);
void acquire(const std::shared_ptr<pool_impl>& pool, connection_pool* owner, std::chrono::milliseconds timeout,
             diagnostics* diag, lease_handler handler);
}  // namespace detail

class connection_pool {
 public:
  using executor_type = asio::strand<asio::any_io_executor>;

  connection_pool(asio::any_io_executor ex, pool_params params);
  ~connection_pool();
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  executor_type get_executor() const noexcept;
  const pool_params& config() const noexcept;

  // Starts connecting every connection (idempotent).
  void start();
  // Fails waiting work with errc::pool_closed and closes every connection.
  void close();

  // One statement. Completes with void(error_code, result); a server error's code is its
  // SQLSTATE (sqlstate.hpp), its message is in `diag`.
  template <class CompletionToken>
  auto async_query(const statement& st, params args, query_options options, diagnostics& diag,
                   CompletionToken&& token) {
    return start_group<detail::query_handler, void(error_code, result)>(
        one_query(st, std::move(args)), options, &diag, nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_query(const statement& st, params args, query_options options, CompletionToken&& token) {
    return start_group<detail::query_handler, void(error_code, result)>(
        one_query(st, std::move(args)), options, nullptr, nullptr, std::forward<CompletionToken>(token));
  }

  // Several statements in one group: one implicit transaction, one sync point; the first
  // failure fails the group. Completes with void(error_code, std::vector<result>).
  template <class CompletionToken>
  auto async_pipeline(std::vector<query> queries, query_options options, diagnostics& diag,
                      CompletionToken&& token) {
    return start_group<detail::group_handler, void(error_code, std::vector<result>)>(
        std::move(queries), options, &diag, nullptr, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_pipeline(std::vector<query> queries, query_options options, CompletionToken&& token) {
    return start_group<detail::group_handler, void(error_code, std::vector<result>)>(
        std::move(queries), options, nullptr, nullptr, std::forward<CompletionToken>(token));
  }

  // An exclusive lease on one connection (for work that spans several round trips, such
  // as migrations under an advisory lock). Waiters are served in order; past `timeout`:
  // errc::pool_timeout; with the database down: errc::connection_lost at once. Completes
  // with void(error_code, pooled_connection).
  template <class CompletionToken>
  auto async_acquire(std::chrono::milliseconds timeout, diagnostics& diag, CompletionToken&& token) {
    return start_acquire(timeout, &diag, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_acquire(std::chrono::milliseconds timeout, CompletionToken&& token) {
    return start_acquire(timeout, nullptr, std::forward<CompletionToken>(token));
  }

  pool_stats stats() const;
  // At least one connection is up.
  bool healthy() const noexcept;

  // For batching that adapts to load; both only on get_executor(). Saturated: every open
  // connection already has pool_params::saturated_at_round_trips round trips in flight or
  // queued, so a statement sent now would wait behind them (with no connection open, or
  // one whose current group is past its deadline, it is not: work then fails fast or
  // waits under a deadline).
  bool saturated() const;
  // Runs `f` once on get_executor() as soon as the pool is not saturated (posted, never
  // inline; at once if it is not saturated now; also when the pool closes).
  void when_unsaturated(std::function<void()> f);

 private:
  friend class pooled_connection;

  static std::vector<query> one_query(const statement& st, params args) {
    std::vector<query> qs;
    qs.push_back(query{&st, std::move(args)});
    return qs;
  }

  template <class Handler, class Signature, class CompletionToken>
  auto start_group(std::vector<query> queries, query_options options, diagnostics* diag,
                   detail::connection* pinned, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, Signature>(
        [this, pinned](Handler handler, std::vector<query> qs, query_options o, diagnostics* d) {
          detail::submit(impl_, std::move(qs), o, d, std::move(handler), pinned);
        },
        token, std::move(queries), options, diag);
  }

  template <class CompletionToken>
  auto start_acquire(std::chrono::milliseconds timeout, diagnostics* diag, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, pooled_connection)>(
        [this](detail::lease_handler handler, std::chrono::milliseconds t, diagnostics* d) {
          detail::acquire(impl_, this, t, d, std::move(handler));
        },
        token, timeout, diag);
  }

  std::shared_ptr<detail::pool_impl> impl_;
};

// An exclusive lease; the connection returns to the pool when this is destroyed.
class pooled_connection {
 public:
  pooled_connection() = default;
  pooled_connection(pooled_connection&&) noexcept;
  pooled_connection& operator=(pooled_connection&&) noexcept;
  ~pooled_connection();

  bool valid() const noexcept { return pool_ != nullptr; }

  // As connection_pool's, on this connection only.
  template <class CompletionToken>
  auto async_query(const statement& st, params args, query_options options, diagnostics& diag,
                   CompletionToken&& token) {
    return owner_->start_group<detail::query_handler, void(error_code, result)>(
        connection_pool::one_query(st, std::move(args)), options, &diag, conn_,
        std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_pipeline(std::vector<query> queries, query_options options, diagnostics& diag,
                      CompletionToken&& token) {
    return owner_->start_group<detail::group_handler, void(error_code, std::vector<result>)>(
        std::move(queries), options, &diag, conn_, std::forward<CompletionToken>(token));
  }

 private:
  friend class detail::pool_impl;
  pooled_connection(connection_pool* owner, std::shared_ptr<detail::pool_impl> pool, detail::connection* conn)
      : owner_(owner), pool_(std::move(pool)), conn_(conn) {}
  void release() noexcept;

  connection_pool* owner_ = nullptr;
  std::shared_ptr<detail::pool_impl> pool_;
  detail::connection* conn_ = nullptr;  // owned by the pool, which this lease keeps alive
};

}  // namespace dataloader::pg
