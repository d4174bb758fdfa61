#include "connection.hpp"

#include "libpq_text.hpp"
#include "pool_impl.hpp"
#include "readable_now.hpp"

#include "dataloader/pg/sqlstate.hpp"

#include <boost/asio/post.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <cstdlib>

namespace dataloader::pg::detail {

namespace {

// The session's command-line options: plan caching and no bitmap scans (pool_params.hpp)
// first (the caller's own options may override them), then the caller's options from the
// conninfo (a later "options" keyword would otherwise replace them), then the settings
// result decoding relies on, last so that they win.
std::string session_options(const pool_params& p) {
  std::string out = p.generic_plans ? "-c plan_cache_mode=force_generic_plan -c enable_bitmapscan=off" : "";
  if (PQconninfoOption* parsed = PQconninfoParse(p.conninfo.c_str(), nullptr)) {
    for (auto* o = parsed; o->keyword; ++o)
      if (std::string_view(o->keyword) == "options" && o->val && *o->val) {
        if (!out.empty()) out += ' ';
        out += o->val;
      }
    PQconninfoFree(parsed);
  }
  if (!out.empty()) out += ' ';
  return out + "-c DateStyle=ISO -c TimeZone=UTC";
}

// How long a server asked to cancel a statement has to answer before it is presumed gone.
constexpr std::chrono::milliseconds cancel_grace{2'000};

constexpr const char* deadline_message =
    "statement group ran past its deadline and was abandoned (the server was asked to cancel it)";

}  // namespace

connection::connection(pool_impl& pool)
    : pool_(&pool),
      ex_(pool.executor()),
      connect_timer_(ex_),
      deadline_timer_(ex_),
      retry_timer_(ex_),
      backoff_(pool.config().retry_interval) {}

connection::~connection() { teardown(); }

std::shared_ptr<pool_impl> connection::pin(pool_impl* pool) { return pool->shared_from_this(); }



void connection::teardown() {
  ++generation_;
  connect_timer_.cancel();
  deadline_timer_.cancel();
  release_socket();
  socket_fd_ = -1;
  reading_ = writing_ = flush_posted_ = false;
  cancel_.reset();
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
  stale_.clear();
  round_trips_.clear();
}

void connection::connect() {
  if (state_ == state::closed) return;
  teardown();
  state_ = state::connecting;
  // The caller's conninfo first (expanded), then what decoding relies on.
  const auto options = session_options(pool_->config());
  const char* keys[] = {"dbname", "fallback_application_name", "client_encoding", "options", nullptr};
  const char* values[] = {pool_->config().conninfo.c_str(), "asio-dataloader", "UTF8", options.c_str(), nullptr};
  conn_ = PQconnectStartParams(keys, values, 1);
  if (conn_ == nullptr) return connect_failed("out of memory starting a connection");
  if (PQstatus(conn_) == CONNECTION_BAD)
    return connect_failed(libpq_message(conn_, "invalid connection string"));
  connect_timer_.expires_after(pool_->config().connect_timeout);
  connect_timer_.async_wait(guarded([this](error_code ec) {
    if (!ec) on_connect_timeout();
  }));
  sync_socket();
  // libpq: start as if PQconnectPoll had returned PGRES_POLLING_WRITING.
  wait_socket(true, &connection::poll_connect);
}

void connection::on_connect_timeout() {
  connect_failed("timed out after " + std::to_string(pool_->config().connect_timeout.count()) +
                 " ms connecting to the database");
}

// Stops waiting on the socket and lets go of it without closing: the descriptor belongs
// to libpq.
void connection::release_socket() {
  if (!socket_) return;
  boost::system::error_code ignored;
  socket_->cancel(ignored);
  socket_->release();
  socket_.reset();
}

// libpq may switch sockets while it tries the hosts of a connection string.
void connection::sync_socket() {
  const int fd = PQsocket(conn_);
  if (fd == socket_fd_) return;
  release_socket();
  socket_fd_ = fd;
  if (fd >= 0) socket_.emplace(ex_, fd);
}

void connection::wait_socket(bool for_write, void (connection::*next)()) {
  if (!socket_) return connect_failed("the connection has no socket");
  socket_->async_wait(for_write ? asio::posix::descriptor_base::wait_write
                                : asio::posix::descriptor_base::wait_read,
                      guarded([this, next](error_code ec) {
                        if (ec) return lose("socket wait failed: " + ec.message());
                        (this->*next)();
                      }));
}

void connection::poll_connect() {
  switch (PQconnectPoll(conn_)) {
    case PGRES_POLLING_READING:
      sync_socket();
      return wait_socket(false, &connection::poll_connect);
    case PGRES_POLLING_WRITING:
      sync_socket();
      return wait_socket(true, &connection::poll_connect);
    case PGRES_POLLING_OK:
      sync_socket();
      return on_connected();
    default:
      return connect_failed(libpq_message(conn_, "connection failed"));
  }
}

void connection::on_connected() {
  connect_timer_.cancel();
  if (PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1)
    return connect_failed(libpq_message(conn_, "could not enter pipeline mode"));
  cancel_.reset(PQgetCancel(conn_), [](PGcancel* c) { PQfreeCancel(c); });
  // Server notices ("relation ... already exists, skipping") are not errors: keep them off
  // the terminal.
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
  state_ = state::ready;
  failed_attempts_ = 0;
  backoff_ = pool_->config().retry_interval;
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  server_ = std::string(host ? host : "") + ":" + (port ? port : "");
  const bool reconnect = ever_connected_;
  ever_connected_ = true;
  arm_read();
  pool_->on_connected(*this, reconnect);
  if (!queued_.empty()) schedule_flush();
}

void connection::connect_failed(const std::string& message) {
  teardown();
  state_ = state::broken;
  ++failed_attempts_;
  auto unsent = std::move(queued_);
  queued_.clear();
  pool_->on_connect_failed(*this, message);
  for (auto& r : unsent) pool_->route(std::move(r));
  reconnect_later();
}

void connection::reconnect_later() {
  if (state_ == state::closed) return;
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, pool_->config().max_retry_interval);
  retry_timer_.async_wait(guarded([this](error_code ec) {
    if (!ec && state_ == state::broken) connect();
  }));
}

void connection::submit(request_ptr r) {
  queued_.push_back(std::move(r));
  if (state_ == state::ready) schedule_flush();
}

request* connection::find(std::uint64_t id) const noexcept {
  for (const auto* list : {&queued_, &in_flight_})
    for (const auto& r : *list)
      if (r->id == id) return r.get();
  return nullptr;
}

bool connection::withdraw(std::uint64_t id) noexcept {
  for (auto it = queued_.begin(); it != queued_.end(); ++it)
    if ((*it)->id == id) {
      it->release();
      queued_.erase(it);
      pool_->on_load_changed();
      return true;
    }
  return false;
}

// Everything submitted during this tick leaves in the flush at its end.
void connection::schedule_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(ex_, guarded([this] {
    flush_posted_ = false;
    flush();
  }));
}

void connection::flush() {
  if (state_ != state::ready || queued_.empty()) return;
  const bool was_idle = in_flight_.empty();
  const auto now = clock::now();
  while (!queued_.empty()) {
    request& r = *queued_.front();
    if (!send(r)) return lose(libpq_message(conn_, "could not send a statement"));
    r.sent_at = now;
    in_flight_.push_back(std::move(queued_.front()));
    queued_.pop_front();
  }
  round_trips_.push_back({in_flight_.back().get(), clock::now()});
  pool_->on_load_changed();
  push_output();
  if (was_idle) arm_deadline();
}

bool connection::send(request& r) {
  r.reset_attempt();
  ++r.attempts;
  auto& counters = pool_->counters();
  const bool timed = pool_->config().slow_statement_threshold.count() > 0;
  for (const query& q : r.queries) {
    const statement& st = *q.stmt;
    bool prepared_now = false;
    if (!prepared_.contains(st.name)) {
      if (stale_.erase(st.name) > 0) {
        const std::string discard = "DEALLOCATE \"" + st.name + "\"";
        if (!PQsendQueryParams(conn_, discard.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0)) return false;
        r.ops.push_back({request::op_kind::discard, &st, true});
      }
      if (!PQsendPrepare(conn_, st.name.c_str(), st.sql.c_str(), static_cast<int>(q.args.size()), nullptr))
        return false;
      prepared_.insert(st.name);
      r.ops.push_back({request::op_kind::prepare, &st, true});
      counters.prepares.add();
      prepared_now = true;
    }
    const auto& values = q.args.values();
    std::vector<const char*> ptrs(values.size());
    std::vector<int> lengths(values.size());
    std::vector<int> formats(values.size(), 0);
    for (std::size_t i = 0; i < values.size(); ++i) {
      ptrs[i] = values[i] ? values[i]->c_str() : nullptr;
      lengths[i] = values[i] ? static_cast<int>(values[i]->size()) : 0;
    }
    if (!PQsendQueryPrepared(conn_, st.name.c_str(), static_cast<int>(values.size()), ptrs.data(),
                             lengths.data(), formats.data(), 0))
      return false;
    r.ops.push_back({request::op_kind::execute, &st, prepared_now});
    counters.statements.add();
    // Timing statements one by one needs each one's results as they end: the server
    // flushes only at the group's sync point otherwise. The last one has that sync.
    if (timed && &q != &r.queries.back() && PQsendFlushRequest(conn_) != 1) return false;
  }
  if (PQpipelineSync(conn_) != 1) return false;
  r.syncs_pending = 1;
  if (r.options.position_after_commit) {
    // Unnamed: nothing to prepare, and its own sync point puts it after the commit.
    static const statement position{"", "SELECT pg_current_wal_insert_lsn()::text"};
    if (!PQsendQueryParams(conn_, position.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0)) return false;
    r.ops.push_back({request::op_kind::execute, &position, true});
    counters.statements.add();
    if (PQpipelineSync(conn_) != 1) return false;
    r.syncs_pending = 2;
  }
  return true;
}

// PQflush returns 1 while libpq still holds output the socket would not take.
void connection::push_output() {
  const int rc = PQflush(conn_);
  if (rc < 0) return lose(libpq_message(conn_, "could not send to the database"));
  if (rc == 0 || writing_) return;
  writing_ = true;
  socket_->async_wait(asio::posix::descriptor_base::wait_write,
                      guarded([this](error_code ec) {
                        writing_ = false;
                        if (ec) return lose("socket wait failed: " + ec.message());
                        push_output();
                      }));
}

void connection::arm_read() {
  if (reading_ || !socket_) return;
  reading_ = true;
  auto on_ready = guarded([this](error_code ec) {
    reading_ = false;
    if (ec) return lose("socket wait failed: " + ec.message());
    on_readable();
  });
  if (readable_now(socket_fd_))
    asio::post(ex_, [on_ready]() mutable { on_ready(error_code{}); });
  else
    socket_->async_wait(asio::posix::descriptor_base::wait_read, std::move(on_ready));
}

void connection::on_readable() {
  if (!PQconsumeInput(conn_)) return lose(libpq_message(conn_, "server closed the connection"));
  const auto gen = generation_;
  process_results();
  if (gen != generation_) return;  // lost while processing
  if (PQstatus(conn_) == CONNECTION_BAD) return lose(libpq_message(conn_, "server closed the connection"));
  arm_read();
  if (PQisBusy(conn_) == 0 && !in_flight_.empty()) push_output();
}

void connection::process_results() {
  bool previous_was_end = false;
  while (!in_flight_.empty() && !PQisBusy(conn_)) {
    PGresult* res = PQgetResult(conn_);
    request& r = *in_flight_.front();
    if (res == nullptr) {  // end of one statement's results
      if (previous_was_end) break;  // nothing more until input arrives
      previous_was_end = true;
      if (r.op_index < r.ops.size()) {
        op_answered(r);
        ++r.op_index;
      }
      continue;
    }
    previous_was_end = false;
    const auto status = PQresultStatus(res);
    if (status == PGRES_PIPELINE_SYNC) {
      PQclear(res);
      if (--r.syncs_pending <= 0) finish_head();
      continue;
    }
    const request::op* op = r.op_index < r.ops.size() ? &r.ops[r.op_index] : nullptr;
    const bool is_prepare = op && op->kind != request::op_kind::execute;
    switch (status) {
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
        if (!is_prepare)
          r.op_rows += status == PGRES_TUPLES_OK ? static_cast<std::size_t>(PQntuples(res))
                                                 : std::strtoull(PQcmdTuples(res), nullptr, 10);
        if (is_prepare) PQclear(res);
        else r.results.emplace_back(std::shared_ptr<const pg_result>(res, [](const pg_result* p) {
          PQclear(const_cast<PGresult*>(p));
        }));
        break;
      case PGRES_PIPELINE_ABORTED:
        // Skipped after an earlier failure of the group: a prepare or discard of it never
        // ran, so the server still has what it had before.
        if (op && op->kind == request::op_kind::prepare) prepared_.erase(op->stmt->name);
        if (op && op->kind == request::op_kind::discard) stale_.insert(op->stmt->name);
        PQclear(res);
        break;
      case PGRES_FATAL_ERROR:
      default: {
        if (!r.ec) {
          const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
          const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
          r.sqlstate = state ? state : "";
          r.ec = sqlstate_error(r.sqlstate);
          r.message = primary ? primary : PQresultErrorMessage(res);
        }
        if (is_prepare) {  // not prepared after all: prepare again next time
          for (const query& q : r.queries) prepared_.erase(q.stmt->name);
        } else if (op && !op->prepared_now && r.sqlstate == "0A000") {
          // "cached plan must not change result type" (matched by code: messages may be
          // translated): discard the statement here and have the group sent again.
          prepared_.erase(op->stmt->name);
          stale_.insert(op->stmt->name);
          r.stale_plan = true;
        }
        PQclear(res);
        break;
      }
    }
  }
}

// A statement's time runs from when the server could start it (its group was sent, and the
// execute ahead of it on this connection had answered) to the end of its results. A
// prepare's answer comes with its execute's (the server flushes only at a sync point or a
// flush request), so prepares are timed with the execute they precede.
void connection::op_answered(request& r) {
  const request::op& op = r.ops[r.op_index];
  const auto threshold = pool_->config().slow_statement_threshold;
  // Off: no clock read per statement (the threshold is fixed for the pool's life).
  if (op.kind != request::op_kind::execute || threshold.count() <= 0) return;
  const auto now = clock::now();
  const auto started = std::max(r.sent_at, last_answer_at_);
  last_answer_at_ = now;
  const std::size_t rows = r.op_rows;
  r.op_rows = 0;
  if (op.stmt->name.empty()) return;
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(now - started);
  if (elapsed < threshold) return;
  // The op's query: executes are in the order of r.queries, after any prepares.
  std::size_t executes_before = 0;
  for (std::size_t i = 0; i < r.op_index; ++i)
    if (r.ops[i].kind == request::op_kind::execute) ++executes_before;
  const std::size_t keys = executes_before < r.queries.size() ? r.queries[executes_before].args.batch_keys() : 1;
  pool_->report_slow(slow_statement{op.stmt->name, keys, rows, server_, elapsed});
}

void connection::finish_head() {
  request_ptr r = std::move(in_flight_.front());
  in_flight_.pop_front();
  if (!round_trips_.empty() && round_trips_.front().last == r.get()) {
    pool_->counters().record_round_trip(clock::now() - round_trips_.front().started);
    round_trips_.pop_front();
  }
  pool_->complete(std::move(r));  // a group past its deadline was answered already
  pool_->on_load_changed();
  arm_deadline();
}

// One timer serves every sent group: it fires at the earliest deadline not yet acted on,
// either a group's own deadline or, once the server was asked to cancel the group it is
// executing, the end of the grace the server has to answer that cancel.
void connection::arm_deadline() {
  deadline_timer_.cancel();
  if (in_flight_.empty()) return;
  auto next = clock::time_point::max();
  const request& head = *in_flight_.front();
  if (head.cancel_sent) next = head.cancel_answer_by;
  else if (head.timed_out) next = head.deadline;  // its cancel is yet to be sent
  for (const auto& r : in_flight_)
    if (!r->timed_out) next = std::min(next, r->deadline);
  if (next == clock::time_point::max()) return;
  deadline_timer_.expires_at(next);
  deadline_timer_.async_wait(guarded([this](error_code ec) {
    if (!ec) on_deadline();
  }));
}

// A caller waits no longer than its group's deadline, whether the server is slow or has
// stopped answering: a group past it is answered with errc::timeout at once and its
// results are dropped when they arrive. The server is asked to cancel the group it is
// executing; if it does not answer within the grace, it is presumed gone and the
// connection is dropped (the groups behind are then answered by on_connection_lost, and
// the pool reconnects).
void connection::on_deadline() {
  if (in_flight_.empty()) return;
  const auto now = clock::now();
  request& head = *in_flight_.front();
  if (head.cancel_sent && now >= head.cancel_answer_by)
    return lose("the database did not answer within " +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(cancel_grace).count()) +
                " ms of a cancel request");
  std::vector<request*> due;
  for (auto& r : in_flight_)
    if (!r->timed_out && r->deadline <= now) {
      r->timed_out = true;
      r->ec = errc::timeout;
      r->sqlstate.clear();
      r->message = deadline_message;
      r->options.retry_on_connection_loss = false;
      pool_->counters().timeouts.add();
      due.push_back(r.get());
    }
  if (head.timed_out && !head.cancel_sent) {
    head.cancel_sent = true;
    head.cancel_answer_by = now + cancel_grace;
    asio::post(pool_->cancel_thread(), [cancel = cancel_] {
      std::array<char, 256> err{};
      if (cancel) PQcancel(cancel.get(), err.data(), static_cast<int>(err.size()));
    });
  }
  arm_deadline();
  pool_->on_load_changed();  // stalled now: batches held for a free connection go
  // Last, with the connection settled: a handler may run inline and close the pool.
  const auto gen = generation_;
  for (request* r : due) {
    if (gen != generation_) return;  // torn down: close() answered the rest
    pool_->answer(*r);
  }
}

void connection::lose(const std::string& message) {
  if (state_ == state::closed || state_ == state::broken) return;
  teardown();
  state_ = state::broken;
  auto unsent = std::move(queued_);
  auto sent = std::move(in_flight_);
  queued_.clear();
  in_flight_.clear();
  pool_->on_connection_lost(*this, std::move(unsent), std::move(sent), message);
  reconnect_later();
}

void connection::close(error_code ec, const std::string& message) {
  if (state_ == state::closed) return;
  teardown();
  state_ = state::closed;
  retry_timer_.cancel();
  auto all = std::move(in_flight_);
  for (auto& r : queued_) all.push_back(std::move(r));
  queued_.clear();
  in_flight_.clear();
  for (auto& r : all) {
    r->ec = ec;
    r->message = message;
    pool_->complete(std::move(r));
  }
}

}  // namespace dataloader::pg::detail
