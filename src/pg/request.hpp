// One caller's statement group on its way through the pool: sent with its own pipeline
// sync point, so that its failure aborts nothing but itself.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/error.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/pg/result.hpp"
#include "dataloader/pg/statement.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace dataloader::pg::detail {

using clock = std::chrono::steady_clock;

struct request {
  std::vector<query> queries;
  query_options options;
  diagnostics* diag = nullptr;
  group_handler handler;
  clock::time_point deadline;          // after which the group is cancelled
  clock::time_point wait_deadline;     // after which waiting for a connection gives up
  int attempts = 0;                    // times sent
  void* pinned = nullptr;              // a leased connection it must run on, if any

  // Per attempt, reset when (re)sent.
  enum class op_kind { prepare, execute };
  std::vector<op_kind> ops;
  std::size_t op_index = 0;
  std::vector<result> results;
  error_code ec;
  std::string message;
  std::string sqlstate;
  bool timed_out = false;
  bool cancel_sent = false;

  void reset_attempt() {
    ops.clear();
    op_index = 0;
    results.clear();
    ec = {};
    message.clear();
    sqlstate.clear();
    timed_out = false;
    cancel_sent = false;
  }
};

using request_ptr = std::unique_ptr<request>;

}  // namespace dataloader::pg::detail
