#include "connection.hpp"
#include "pool_impl.hpp"

#include "dataloader/pg/sqlstate.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>

#include <algorithm>

namespace dataloader::pg {
namespace detail {

namespace {

const std::string closed_message = "the connection pool is closed";

// Invokes a caller's handler on its own executor (the pool's strand by default), with its
// cancellation slot cleared there first. A completion found during the caller's own
// initiating call goes round the strand's queue first: Asio forbids completing inline.
template <class Handler, class... Args>
void invoke(Handler h, const asio::any_io_executor& strand, bool post, Args... args) {
  auto ex = asio::get_associated_executor(h, strand);
  auto call = [h = std::move(h), ... args = std::move(args)]() mutable {
    asio::get_associated_cancellation_slot(h).clear();
    std::move(h)(std::move(args)...);
  };
  if (post) asio::post(strand, [ex, call = std::move(call)]() mutable { asio::dispatch(ex, std::move(call)); });
  else asio::dispatch(ex, std::move(call));
}

// Installed in a caller's cancellation slot: hops to the strand and cancels by id, so a
// cancellation that arrives after completion finds nothing and does nothing.
struct cancel_by_id {
  std::weak_ptr<pool_impl> pool;
  std::uint64_t id;
  void operator()(asio::cancellation_type type) const {
    if (type == asio::cancellation_type::none) return;
    if (auto p = pool.lock()) asio::post(p->executor(), [p, id = id] { p->cancel(id); });
  }
};

template <class Handler>
void connect_cancellation(Handler& h, const std::shared_ptr<pool_impl>& pool, std::uint64_t id) {
  auto slot = asio::get_associated_cancellation_slot(h);
  if (slot.is_connected()) slot.template emplace<cancel_by_id>(cancel_by_id{pool, id});
}

}  // namespace

pool_impl::pool_impl(asio::any_io_executor ex, pool_params params)
    : ex_(asio::make_strand(std::move(ex))), params_(std::move(params)), wait_timer_(ex_) {
  if (params_.size == 0) params_.size = 1;
}

pool_impl::~pool_impl() { cancel_thread_.join(); }

void pool_impl::start() {
  if (started_ || closed_) return;
  started_ = true;
  for (std::size_t i = 0; i < params_.size; ++i) {
    conns_.push_back(std::make_shared<connection>(*this));
    conns_.back()->connect();
  }
}

void pool_impl::close() {
  if (closed_) return;
  closed_ = true;
  wait_timer_.cancel();
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& r : waiting) fail(std::move(r), errc::pool_closed, closed_message);
  auto leases = std::move(lease_waiters_);
  lease_waiters_.clear();
  for (auto& w : leases) refuse(std::move(w), errc::pool_closed, closed_message);
  for (auto& c : conns_) c->close(errc::pool_closed, closed_message);
  conns_.clear();
  update_gauges();
}

bool pool_impl::database_down() const {
  // Every connection has failed its latest attempt: answer at once rather than after the
  // acquire timeout (callers turn this into 503 quickly).
  if (conns_.empty()) return false;
  return std::all_of(conns_.begin(), conns_.end(), [](const auto& c) {
    return !c->ready() && c->failed_attempts() > 0;
  });
}

connection* pool_impl::pick() {
  if (tick_target_ && tick_target_->ready() && !tick_target_->leased) return tick_target_;
  connection* best = nullptr;
  for (auto& c : conns_)
    if (c->ready() && !c->leased && (!best || c->load() < best->load())) best = c.get();
  tick_target_ = best;
  // Everything routed during this tick shares one connection, hence one round trip.
  if (best && !tick_reset_posted_) {
    tick_reset_posted_ = true;
    asio::post(ex_, [self = shared_from_this()] {
      self->tick_reset_posted_ = false;
      self->tick_target_ = nullptr;
    });
  }
  return best;
}

void pool_impl::route(request_ptr r) {
  if (closed_) return fail(std::move(r), errc::pool_closed, closed_message);
  if (connection* c = r->pinned) {
    if (c->ready()) return c->submit(std::move(r));
    return fail(std::move(r), errc::connection_lost,
                "the leased connection is down: " + (last_error_.empty() ? "reconnecting" : last_error_));
  }
  if (connection* c = pick()) return c->submit(std::move(r));
  if (database_down())
    return fail(std::move(r), errc::connection_lost, "database unavailable: " + last_error_);
  waiting_.push_back(std::move(r));
  update_gauges();
  arm_wait_timer();
}

void pool_impl::fail(request_ptr r, error_code ec, std::string message) {
  r->ec = ec;
  r->sqlstate.clear();
  r->message = std::move(message);
  r->attempts = std::max(r->attempts, 1);
  r->options.retry_on_connection_loss = false;
  complete(std::move(r));
}

void pool_impl::complete(request_ptr r) {
  // Sent once more (never more): a read whose connection died, or any group refused for a
  // stale plan (nothing of it committed).
  const bool lost = r->ec == errc::outcome_unknown || r->ec == errc::connection_lost || r->ec == sqlstate::admin_shutdown;
  const bool resend = (lost && r->options.retry_on_connection_loss) || r->stale_plan;
  if (resend && r->attempts == 1 && !r->pinned && !closed_) {
    counters_.retries.add();
    r->options.retry_on_connection_loss = false;
    return route(std::move(r));
  }
  answer(*r);
}

void pool_impl::answer(request& r) {
  if (std::holds_alternative<std::monostate>(r.handler)) return;  // answered already
  if (r.ec) counters_.errors.add();
  if (r.diag) {
    if (r.ec) r.diag->assign(r.message, r.sqlstate);
    else r.diag->clear();
    r.diag = nullptr;
  }
  auto handler = std::exchange(r.handler, std::monostate{});
  const asio::any_io_executor fallback = ex_;
  if (auto* one = std::get_if<query_handler>(&handler)) {
    result first = r.results.empty() ? result{} : std::move(r.results.front());
    invoke(std::move(*one), fallback, initiating_ > 0, r.ec, std::move(first));
  } else {
    invoke(std::move(std::get<group_handler>(handler)), fallback, initiating_ > 0, r.ec, std::move(r.results));
  }
}

void pool_impl::cancel(std::uint64_t id) {
  const auto aborted = [](request& r) {
    r.ec = asio::error::operation_aborted;
    r.sqlstate.clear();
    r.message = "statement group cancelled";
    r.results.clear();
    r.options.retry_on_connection_loss = false;
  };
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it)
    if ((*it)->id == id) {
      request_ptr r = std::move(*it);
      waiting_.erase(it);
      aborted(*r);
      update_gauges();
      return answer(*r);
    }
  for (auto it = lease_waiters_.begin(); it != lease_waiters_.end(); ++it)
    if ((*it)->id == id) {
      lease_ptr w = std::move(*it);
      lease_waiters_.erase(it);
      update_gauges();
      return refuse(std::move(w), asio::error::operation_aborted, "acquire cancelled");
    }
  for (auto& c : conns_)
    if (request* r = c->find(id)) {
      if (c->withdraw(id)) {  // not sent yet: never will be
        aborted(*r);
        request_ptr owned(r);
        return answer(*owned);
      }
      aborted(*r);  // sent: answer now, drop its results when they arrive
      return answer(*r);
    }
}

void pool_impl::on_connected(connection&, bool reconnect) {
  if (reconnect) counters_.reconnects.add();
  serve_waiters();
  update_gauges();
}

void pool_impl::on_connect_failed(connection&, const std::string& message) {
  counters_.connect_failures.add();
  last_error_ = message;
  // Waiting requests fail fast once the database is known to be down.
  if (database_down()) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& r : waiting) fail(std::move(r), errc::connection_lost, "database unavailable: " + message);
    refuse_waiting_leases("database unavailable: " + message);
  }
  update_gauges();
}

void pool_impl::on_connection_lost(connection&, std::deque<request_ptr> unsent,
                                   std::deque<request_ptr> in_flight, const std::string& message) {
  last_error_ = message;
  for (auto& r : in_flight) {
    if (!r->timed_out) {  // (one past its deadline was answered then)
      r->ec = errc::outcome_unknown;
      r->sqlstate.clear();
      r->message = "connection to the database lost after the statements were sent: " + message;
    }
    complete(std::move(r));
  }
  for (auto& r : unsent) route(std::move(r));  // never sent: safe to send elsewhere
  update_gauges();
}

void pool_impl::report_slow(const slow_statement& slow) {
  {
    const std::lock_guard lock(slow_mutex_);
    ++slow_[std::string(slow.name)];
  }
  if (params_.on_slow_statement) params_.on_slow_statement(slow);
}

std::map<std::string, std::uint64_t> pool_impl::slow_statements() const {
  const std::lock_guard lock(slow_mutex_);
  return slow_;
}

void pool_impl::on_load_changed() { update_gauges(); }

void pool_impl::serve_waiters() {
  while (!lease_waiters_.empty()) {
    connection* free = nullptr;
    for (auto& c : conns_)
      if (c->ready() && !c->leased) {
        free = c.get();
        break;
      }
    if (!free) break;
    auto w = std::move(lease_waiters_.front());
    lease_waiters_.pop_front();
    grant(std::move(w), *free);
  }
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& r : waiting) route(std::move(r));
  update_gauges();
}

void pool_impl::acquire(lease_ptr w) {
  if (closed_) return refuse(std::move(w), errc::pool_closed, closed_message);
  lease_waiters_.push_back(std::move(w));
  serve_waiters();
  if (database_down()) return refuse_waiting_leases("database unavailable: " + last_error_);
  arm_wait_timer();
}

void pool_impl::refuse_waiting_leases(const std::string& message) {
  auto waiters = std::move(lease_waiters_);
  lease_waiters_.clear();
  update_gauges();
  for (auto& w : waiters) refuse(std::move(w), errc::connection_lost, message);
}

void pool_impl::grant(lease_ptr w, connection& c) {
  c.leased = true;
  if (w->diag) w->diag->clear();
  if (tick_target_ == &c) tick_target_ = nullptr;
  invoke(std::move(w->handler), ex_, initiating_ > 0, error_code{}, pooled_connection(w->owner, shared_from_this(), &c));
}

void pool_impl::refuse(lease_ptr w, error_code ec, const std::string& message) {
  if (w->diag) w->diag->assign(message);
  invoke(std::move(w->handler), ex_, initiating_ > 0, ec, pooled_connection{});
}

void pool_impl::release(connection* c) {
  for (auto& owned : conns_)
    if (owned.get() == c) {
      c->leased = false;
      serve_waiters();
      return;
    }
}

void pool_impl::arm_wait_timer() {
  auto earliest = clock::time_point::max();
  for (auto& r : waiting_) earliest = std::min(earliest, r->wait_deadline);
  for (auto& w : lease_waiters_) earliest = std::min(earliest, w->deadline);
  if (earliest == clock::time_point::max()) return;
  wait_timer_.expires_at(earliest);
  wait_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->on_wait_timer();
  });
}

void pool_impl::on_wait_timer() {
  const auto now = clock::now();
  const std::string why = last_error_.empty() ? std::string()
                                              : " (last connection error: " + last_error_ + ")";
  // The queues are settled before anyone is answered: a handler may run inline and
  // submit again.
  std::deque<request_ptr> expired, still;
  for (auto& r : waiting_) (r->wait_deadline <= now ? expired : still).push_back(std::move(r));
  waiting_ = std::move(still);
  std::deque<lease_ptr> expired_leases, still_leases;
  for (auto& w : lease_waiters_) (w->deadline <= now ? expired_leases : still_leases).push_back(std::move(w));
  lease_waiters_ = std::move(still_leases);
  update_gauges();
  arm_wait_timer();
  for (auto& r : expired)
    fail(std::move(r), errc::pool_timeout,
         "no database connection became available within " + std::to_string(params_.acquire_timeout.count()) +
             " ms" + why);
  for (auto& w : expired_leases)
    refuse(std::move(w), errc::pool_timeout,
           "no connection became free before the acquire deadline; all " + std::to_string(conns_.size()) +
               " are leased or down" + why);
}

void pool_impl::update_gauges() {
  std::uint64_t connected = 0, in_use = 0;
  for (auto& c : conns_) {
    connected += c->ready() ? 1 : 0;
    in_use += (c->leased || c->load() > 0) ? 1 : 0;
  }
  counters_.connected.set(connected);
  counters_.in_use.set(in_use);
  counters_.waiting.set(waiting_.size() + lease_waiters_.size());
  if (!unsaturated_waiters_.empty() && !saturated()) {
    for (auto& f : std::exchange(unsaturated_waiters_, {})) asio::post(ex_, std::move(f));
  }
}

// A stalled connection ends saturation: whatever is held then goes, to wait under the
// pool's own deadlines (which answer for a server that stopped) rather than unbounded.
bool pool_impl::saturated() const {
  if (closed_) return false;
  bool any_open = false;
  for (const auto& c : conns_) {
    if (!c->ready() || c->leased) continue;
    if (c->load() < std::max<std::size_t>(1, params_.saturated_at_round_trips) || c->stalled()) return false;
    any_open = true;
  }
  return any_open;
}

void pool_impl::when_unsaturated(std::function<void()> f) {
  if (!saturated()) return asio::post(ex_, std::move(f));
  unsaturated_waiters_.push_back(std::move(f));
}

void submit(const std::shared_ptr<pool_impl>& pool, std::vector<query> queries, query_options options,
            diagnostics* diag, std::variant<group_handler, query_handler> handler, connection* pinned) {
  auto r = std::make_unique<request>();
  r->id = pool->next_id();
  std::visit([&](auto& h) { connect_cancellation(h, pool, r->id); }, handler);
  std::visit([&](auto& h) { r->handler = std::move(h); }, handler);
  r->queries = std::move(queries);
  r->options = options;
  r->diag = diag;
  r->pinned = pinned;
  const auto now = clock::now();
  const auto timeout = options.timeout.count() > 0 ? options.timeout : pool->config().statement_timeout;
  r->deadline = now + timeout;
  r->wait_deadline = now + pool->config().acquire_timeout;
  // Refuse bad input before anything is sent.
  std::string problem;
  if (r->queries.empty()) problem = "a statement group needs at least one statement";
  for (std::size_t i = 0; problem.empty() && i < r->queries.size(); ++i) {
    if (r->queries[i].stmt == nullptr) problem = "statement " + std::to_string(i + 1) + " is missing";
    else if (!r->queries[i].args.problem().empty()) problem = r->queries[i].args.problem();
  }
  auto* p = pool.get();
  p->initiate([pool, r = std::move(r), problem = std::move(problem)]() mutable {
    if (!problem.empty()) {
      r->ec = errc::invalid_argument;
      r->message = std::move(problem);
      r->options.retry_on_connection_loss = false;
      return pool->complete(std::move(r));
    }
    pool->route(std::move(r));
  });
}

void acquire(const std::shared_ptr<pool_impl>& pool, connection_pool* owner, std::chrono::milliseconds timeout,
             diagnostics* diag, lease_handler handler) {
  const auto id = pool->next_id();
  connect_cancellation(handler, pool, id);
  auto w = std::make_unique<lease_request>(lease_request{id, clock::now() + timeout, diag, std::move(handler), owner});
  auto* p = pool.get();
  p->initiate([pool, w = std::move(w)]() mutable { pool->acquire(std::move(w)); });
}

}  // namespace detail

connection_pool::connection_pool(asio::any_io_executor ex, pool_params params)
    : impl_(std::make_shared<detail::pool_impl>(std::move(ex), std::move(params))) {}

connection_pool::~connection_pool() {
  asio::dispatch(impl_->executor(), [impl = impl_] { impl->close(); });
}

connection_pool::executor_type connection_pool::get_executor() const noexcept { return impl_->executor(); }
const pool_params& connection_pool::config() const noexcept { return impl_->config(); }

void connection_pool::start() {
  asio::dispatch(impl_->executor(), [impl = impl_] { impl->start(); });
}
void connection_pool::close() {
  asio::dispatch(impl_->executor(), [impl = impl_] { impl->close(); });
}

bool connection_pool::saturated() const { return impl_->saturated(); }

void connection_pool::when_unsaturated(std::function<void()> f) { impl_->when_unsaturated(std::move(f)); }

pool_stats connection_pool::stats() const {
  auto& c = impl_->counters();
  pool_stats s;
  s.statements = c.statements.get();
  s.prepares = c.prepares.get();
  s.round_trips = c.round_trips.get();
  s.errors = c.errors.get();
  s.timeouts = c.timeouts.get();
  s.retries = c.retries.get();
  s.reconnects = c.reconnects.get();
  s.connect_failures = c.connect_failures.get();
  s.pool_size = impl_->config().size;
  s.connected = c.connected.get();
  s.in_use = c.in_use.get();
  s.waiting = c.waiting.get();
  for (std::size_t i = 0; i < s.round_trip_histogram.size(); ++i) s.round_trip_histogram[i] = c.round_trip_histogram[i].get();
  s.round_trip_us_sum = c.round_trip_us_sum.get();
  s.slow_statements = impl_->slow_statements();
  return s;
}

bool connection_pool::healthy() const noexcept { return impl_->counters().connected.get() > 0; }

pooled_connection::pooled_connection(pooled_connection&& o) noexcept
    : owner_(o.owner_), pool_(std::move(o.pool_)), conn_(o.conn_) {
  o.owner_ = nullptr;
  o.conn_ = nullptr;
}

pooled_connection& pooled_connection::operator=(pooled_connection&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = o.owner_;
    pool_ = std::move(o.pool_);
    conn_ = o.conn_;
    o.owner_ = nullptr;
    o.conn_ = nullptr;
  }
  return *this;
}

pooled_connection::~pooled_connection() { release(); }

void pooled_connection::release() noexcept {
  if (!pool_) return;
  auto pool = std::move(pool_);
  asio::dispatch(pool->executor(), [pool, c = conn_] { pool->release(c); });
  pool_.reset();
  conn_ = nullptr;
  owner_ = nullptr;
}

}  // namespace dataloader::pg
