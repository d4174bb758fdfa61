// One caller's statement group on its way through the pool: sent with its own pipeline
// sync point, so that its failure aborts nothing but itself.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/error.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/pg/result.hpp"
#include "dataloader/pg/statement.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace dataloader::pg::detail {

using clock = std::chrono::steady_clock;

struct request {
  std::uint64_t id = 0;                // names it to a cancellation, which may outlive it
  std::vector<query> queries;
  query_options options;
  diagnostics* diag = nullptr;         // null once the caller has been answered
  // The caller's handler; empty once it has been invoked (a cancelled group in flight is
  // answered at once and its results are dropped when they arrive).
  std::variant<std::monostate, group_handler, query_handler> handler;
  clock::time_point deadline;          // after which the group is cancelled
  clock::time_point wait_deadline;     // after which waiting for a connection gives up
  int attempts = 0;                    // times sent
  connection* pinned = nullptr;        // a leased connection it must run on, if any

  // Per attempt, reset when (re)sent. A discard is the DEALLOCATE ahead of a re-prepare.
  enum class op_kind { prepare, discard, execute };
  struct op {
    op_kind kind;
    const statement* stmt;
    bool prepared_now;  // its statement was prepared in this same attempt
  };
  std::vector<op> ops;
  std::size_t op_index = 0;
  clock::time_point sent_at;    // when the flush carrying this attempt left
  std::size_t op_rows = 0;      // rows of the current op's result so far
  int syncs_pending = 0;  // sync points still to arrive: 1, or 2 with position_after_commit
  std::vector<result> results;
  error_code ec;
  std::string message;
  std::string sqlstate;  // the server's, for diagnostics
  bool timed_out = false;
  bool cancel_sent = false;
  // A statement prepared earlier failed with 0A000: its plan no longer matches the tables
  // (a migration changed a column's type or collation). Nothing of the group committed,
  // so it is sent once more, re-prepared.
  bool stale_plan = false;
  clock::time_point cancel_answer_by;  // once cancel_sent: the server is presumed gone after

  void reset_attempt() {
    ops.clear();
    op_index = 0;
    op_rows = 0;
    syncs_pending = 0;
    results.clear();
    ec = {};
    message.clear();
    sqlstate.clear();
    timed_out = false;
    cancel_sent = false;
    stale_plan = false;
  }
};

using request_ptr = std::unique_ptr<request>;

// A lease waiter. Held by pointer: Boost 1.81's any_completion_handler recurses without
// end on move assignment, so a handler is only ever move-constructed.
struct lease_request {
  std::uint64_t id = 0;
  clock::time_point deadline;
  diagnostics* diag = nullptr;
  lease_handler handler;
  connection_pool* owner = nullptr;
};
using lease_ptr = std::unique_ptr<lease_request>;

}  // namespace dataloader::pg::detail
