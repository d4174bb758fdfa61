// An asynchronous PostgreSQL connection pool on libpq, driven by Asio.
//
// Every connection runs in pipeline mode. Statement groups submitted during one tick are
// routed to one connection and leave together, each group followed by its own sync
// point: one round trip for the tick, and a failing group aborts only itself (each group
// runs in its own implicit transaction). Statements are prepared once per connection and
// then executed by name; values always travel as parameters.
//
// A broken connection is replaced in the background with capped exponential backoff;
// callers never get a dead connection. Reads may ask to be resent once on another
// connection when theirs died (query_options::retry_on_connection_loss); writes never are.
// A group that runs past its deadline is cancelled through libpq's cancel request (sent
// from a helper thread: PQcancel blocks) and completes with errc::timeout.
//
// All state lives on the pool's strand; operations may be started from any thread.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/error.hpp"
#include "dataloader/pg/pool_params.hpp"
#include "dataloader/pg/pool_stats.hpp"
#include "dataloader/pg/result.hpp"
#include "dataloader/pg/statement.hpp"

#include "dataloader/detail/move_only_function.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace dataloader::pg {

namespace asio = boost::asio;

struct query_options {
  // Resend once on another connection if this one died before answering. Only for
  // statements that are safe to run twice (reads).
  bool retry_on_connection_loss = false;
  // Deadline of the group; 0: the pool's statement_timeout.
  std::chrono::milliseconds timeout{0};
};

class pooled_connection;

// Called on the pool's strand; the adapters below carry the caller's handler to its own
// executor (default: the pool's).
using group_handler = dataloader::detail::move_only_function<void(error_code, std::vector<result>)>;

namespace detail {
class pool_impl;
struct request;

// Adapts a caller's handler to the pool's internal signature and delivers it on the
// handler's executor.
template <class Handler, bool Single>
struct group_adapter {
  Handler handler;
  asio::any_io_executor executor;
  void operator()(error_code ec, std::vector<result> results) {
    if constexpr (Single) {
      result first = results.empty() ? result{} : std::move(results.front());
      asio::dispatch(executor, asio::append(std::move(handler), ec, std::move(first)));
    } else {
      asio::dispatch(executor, asio::append(std::move(handler), ec, std::move(results)));
    }
  }
};

void submit(const std::shared_ptr<pool_impl>& pool, std::vector<query> queries,
            query_options options, diagnostics* diag, group_handler handler, void* pinned);
}  // namespace detail

class connection_pool {
 public:
  using executor_type = asio::strand<asio::any_io_executor>;
  using acquire_handler = dataloader::detail::move_only_function<void(error_code, pooled_connection)>;

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

  // Completes with void(error_code, result).
  template <class CompletionToken>
  auto async_query(const statement& st, params args, query_options options, diagnostics& diag,
                   CompletionToken&& token) {
    std::vector<query> qs;
    qs.push_back(query{&st, std::move(args)});
    return start_group<true, void(error_code, result)>(std::move(qs), options, diag, nullptr,
                                                       std::forward<CompletionToken>(token));
  }

  // Several statements in one group: one implicit transaction, one sync point; the first
  // failure fails the group. Completes with void(error_code, std::vector<result>).
  template <class CompletionToken>
  auto async_pipeline(std::vector<query> queries, query_options options, diagnostics& diag,
                      CompletionToken&& token) {
    return start_group<false, void(error_code, std::vector<result>)>(
        std::move(queries), options, diag, nullptr, std::forward<CompletionToken>(token));
  }

  // An exclusive lease on one connection (for work that spans several round trips, such
  // as migrations under an advisory lock). Waiters are served in order; past `timeout`:
  // errc::pool_timeout. Completes with void(error_code, pooled_connection).
  template <class CompletionToken>
  auto async_acquire(std::chrono::milliseconds timeout, diagnostics& diag, CompletionToken&& token);

  pool_stats stats() const;
  // At least one connection is up.
  bool healthy() const noexcept;

 private:
  friend class pooled_connection;

  template <bool Single, class Signature, class CompletionToken>
  auto start_group(std::vector<query> queries, query_options options, diagnostics& diag,
                   void* pinned, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, Signature>(
        [this, pinned](auto handler, std::vector<query> qs, query_options o, diagnostics* d) {
          using H = std::decay_t<decltype(handler)>;
          auto ex = asio::get_associated_executor(handler, asio::any_io_executor(get_executor()));
          detail::submit(impl_, std::move(qs), o, d,
                         group_handler(detail::group_adapter<H, Single>{std::move(handler), std::move(ex)}),
                         pinned);
        },
        token, std::move(queries), options, &diag);
  }

  void acquire(std::chrono::milliseconds timeout, diagnostics* diag, acquire_handler handler);

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

  template <class CompletionToken>
  auto async_query(const statement& st, params args, query_options options, diagnostics& diag,
                   CompletionToken&& token) {
    std::vector<query> qs;
    qs.push_back(query{&st, std::move(args)});
    return owner_->start_group<true, void(error_code, result)>(
        std::move(qs), options, diag, conn_, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_pipeline(std::vector<query> queries, query_options options, diagnostics& diag,
                      CompletionToken&& token) {
    return owner_->start_group<false, void(error_code, std::vector<result>)>(
        std::move(queries), options, diag, conn_, std::forward<CompletionToken>(token));
  }

 private:
  friend class detail::pool_impl;
  pooled_connection(connection_pool* owner, std::shared_ptr<detail::pool_impl> pool, void* conn)
      : owner_(owner), pool_(std::move(pool)), conn_(conn) {}
  void release() noexcept;

  connection_pool* owner_ = nullptr;
  std::shared_ptr<detail::pool_impl> pool_;
  void* conn_ = nullptr;  // keeps the connection alive through the pool's bookkeeping
};

template <class CompletionToken>
auto connection_pool::async_acquire(std::chrono::milliseconds timeout, diagnostics& diag,
                                    CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(error_code, pooled_connection)>(
      [this](auto handler, std::chrono::milliseconds t, diagnostics* d) {
        using H = std::decay_t<decltype(handler)>;
        auto ex = asio::get_associated_executor(handler, asio::any_io_executor(get_executor()));
        struct adapter {
          H handler;
          asio::any_io_executor executor;
          void operator()(error_code ec, pooled_connection c) {
            asio::dispatch(executor, asio::append(std::move(handler), ec, std::move(c)));
          }
        };
        acquire(t, d, acquire_handler(adapter{std::move(handler), std::move(ex)}));
      },
      token, timeout, &diag);
}

}  // namespace dataloader::pg
