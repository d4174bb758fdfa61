// The listener's state machine: connecting -> sending LISTEN -> listening (heartbeats)
// -> lost -> (backoff) connecting. Every callback checks the generation it was armed in,
// so a wait armed on an old connection does nothing after a reconnect or stop().
#include "dataloader/pg/listener.hpp"

#include "libpq_text.hpp"
#include "readable_now.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <libpq-fe.h>

#include <atomic>
#include <optional>

namespace dataloader::pg {

namespace detail {

class listener_impl : public std::enable_shared_from_this<listener_impl> {
 public:
  listener_impl(asio::any_io_executor ex, listener_params p, listener_events e)
      : ex_(std::move(ex)), params_(std::move(p)), events_(std::move(e)), timer_(ex_), backoff_(params_.retry_interval) {}
  ~listener_impl() { teardown(); }

  void start() {
    asio::dispatch(ex_, [self = shared_from_this()] {
      if (self->phase_ == phase::idle) self->connect();
    });
  }
  void stop() {
    stopped_.store(true);
    asio::post(ex_, [self = shared_from_this()] {
      self->teardown();
      self->phase_ = phase::stopped;
    });
  }
  listener_stats stats() const {
    listener_stats s;
    s.listening = listening_.load(std::memory_order_relaxed);
    s.connects = connects_.load(std::memory_order_relaxed);
    s.losses = losses_.load(std::memory_order_relaxed);
    s.notifications = notifications_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  enum class phase { idle, connecting, subscribing, listening, waiting_to_retry, stopped };

  template <class F>
  auto guarded(F f) {
    return [self = shared_from_this(), gen = generation_, f = std::move(f)](auto... args) mutable {
      if (gen != self->generation_ || self->stopped_.load()) return;
      f(args...);
    };
  }

  void teardown() {
    ++generation_;
    timer_.cancel();
    if (socket_) {
      boost::system::error_code ignored;
      socket_->cancel(ignored);
      socket_->release();  // the descriptor is libpq's
      socket_.reset();
    }
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    heartbeat_outstanding_ = false;
    outstanding_ = 0;
    listening_.store(false, std::memory_order_relaxed);
  }

  void connect() {
    teardown();
    phase_ = phase::connecting;
    const char* keys[] = {"dbname", "fallback_application_name", "client_encoding", nullptr};
    const char* values[] = {params_.conninfo.c_str(), "asio-dataloader-listener", "UTF8", nullptr};
    conn_ = PQconnectStartParams(keys, values, 1);
    if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD)
      return fail(libpq_message(conn_, "could not start a connection"));
    timer_.expires_after(params_.connect_timeout);
    timer_.async_wait(guarded([this](boost::system::error_code ec) {
      if (!ec) fail("timed out connecting");
    }));
    wait(true, &listener_impl::poll_connect);
  }

  void sync_socket() {
    const int fd = PQsocket(conn_);
    if (socket_ && socket_->native_handle() == fd) return;
    if (socket_) {
      boost::system::error_code ignored;
      socket_->cancel(ignored);
      socket_->release();
      socket_.reset();
    }
    if (fd >= 0) socket_.emplace(ex_, fd);
  }

  void wait(bool for_write, void (listener_impl::*next)()) {
    sync_socket();
    if (!socket_) return fail("the connection has no socket");
    if (!for_write && readable_now(socket_->native_handle())) {
      asio::post(ex_, guarded([this, next] { (this->*next)(); }));
      return;
    }
    socket_->async_wait(for_write ? asio::posix::descriptor_base::wait_write : asio::posix::descriptor_base::wait_read,
                        guarded([this, next](boost::system::error_code ec) {
                          if (ec) return fail("socket wait failed: " + ec.message());
                          (this->*next)();
                        }));
  }

  void poll_connect() {
    switch (PQconnectPoll(conn_)) {
      case PGRES_POLLING_READING: return wait(false, &listener_impl::poll_connect);
      case PGRES_POLLING_WRITING: return wait(true, &listener_impl::poll_connect);
      case PGRES_POLLING_OK: return subscribe();
      default: return fail(libpq_message(conn_, "connection failed"));
    }
  }

  void subscribe() {
    timer_.cancel();
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    if (PQsetnonblocking(conn_, 1) != 0) return fail(libpq_message(conn_, "could not make the connection non-blocking"));
    std::string sql;
    for (const auto& channel : params_.channels) {
      char* quoted = PQescapeIdentifier(conn_, channel.c_str(), channel.size());
      if (quoted == nullptr) return fail(libpq_message(conn_, "could not quote a channel name"));
      sql += "LISTEN ";
      sql += quoted;
      sql += ';';
      PQfreemem(quoted);
    }
    phase_ = phase::subscribing;
    send(sql.c_str());
  }

  void send(const char* sql) {
    if (PQsendQuery(conn_, sql) != 1) return fail(libpq_message(conn_, "could not send"));
    ++outstanding_;
    flush();
  }

  void flush() {
    const int r = PQflush(conn_);
    if (r < 0) return fail(libpq_message(conn_, "could not send"));
    if (r == 1) return wait(true, &listener_impl::flush);
    if (!reading_) {
      reading_ = true;
      wait(false, &listener_impl::on_readable);
    }
  }

  void on_readable() {
    reading_ = false;
    if (PQconsumeInput(conn_) != 1) return fail(libpq_message(conn_, "the connection was closed"));
    // Results first: the LISTEN's answer says the subscription is in effect.
    while (outstanding_ > 0 && PQisBusy(conn_) == 0) {
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) {  // every result of the oldest query is in
        --outstanding_;
        query_done();
        if (stopped_.load()) return;
        continue;
      }
      std::string error = PQresultStatus(r) == PGRES_FATAL_ERROR ? libpq_text(PQresultErrorMessage(r)) : "";
      PQclear(r);
      if (!error.empty()) return fail(error);
    }
    while (PGnotify* n = PQnotifies(conn_)) {
      notification note{n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid};
      PQfreemem(n);
      notifications_.fetch_add(1, std::memory_order_relaxed);
      if (events_.notified) events_.notified(note);
      if (stopped_.load() || conn_ == nullptr) return;
    }
    if (PQstatus(conn_) == CONNECTION_BAD) return fail(libpq_message(conn_, "the connection was closed"));
    reading_ = true;
    wait(false, &listener_impl::on_readable);
  }

  // A query's results are all in (PQgetResult gave null).
  void query_done() {
    if (phase_ == phase::subscribing) {
      phase_ = phase::listening;
      failed_attempts_ = 0;
      backoff_ = params_.retry_interval;
      listening_.store(true, std::memory_order_relaxed);
      connects_.fetch_add(1, std::memory_order_relaxed);
      arm_heartbeat();
      if (events_.listening) events_.listening();
    } else {
      heartbeat_outstanding_ = false;
    }
  }

  void arm_heartbeat() {
    timer_.expires_after(params_.heartbeat_interval);
    timer_.async_wait(guarded([this](boost::system::error_code ec) {
      if (ec) return;
      if (heartbeat_outstanding_)
        return fail("no answer to a heartbeat within " + std::to_string(params_.heartbeat_interval.count()) + " ms");
      heartbeat_outstanding_ = true;
      send("SELECT 1");
      if (conn_ != nullptr) arm_heartbeat();
    }));
  }

  void fail(const std::string& why) {
    const bool was_listening = phase_ == phase::listening;
    teardown();
    reading_ = false;
    if (was_listening) {
      losses_.fetch_add(1, std::memory_order_relaxed);
      if (events_.lost) events_.lost(why);
    }
    if (stopped_.load()) return;
    phase_ = phase::waiting_to_retry;
    ++failed_attempts_;
    // The first retry after a loss is at once: the server may only have dropped this session.
    timer_.expires_after(failed_attempts_ == 1 && was_listening ? std::chrono::milliseconds(0) : backoff_);
    if (failed_attempts_ > 1) backoff_ = std::min(backoff_ * 2, params_.max_retry_interval);
    timer_.async_wait(guarded([this](boost::system::error_code ec) {
      if (!ec) connect();
    }));
  }

  asio::any_io_executor ex_;
  listener_params params_;
  listener_events events_;
  asio::steady_timer timer_;
  std::chrono::milliseconds backoff_;
  PGconn* conn_ = nullptr;
  std::optional<asio::posix::stream_descriptor> socket_;
  phase phase_ = phase::idle;
  std::uint64_t generation_ = 0;
  int failed_attempts_ = 0;
  bool reading_ = false;
  bool heartbeat_outstanding_ = false;
  int outstanding_ = 0;  // queries sent whose results are not all in
  std::atomic<bool> stopped_{false};
  std::atomic<bool> listening_{false};
  std::atomic<std::uint64_t> connects_{0}, losses_{0}, notifications_{0};
};

}  // namespace detail

listener::listener(asio::any_io_executor ex, listener_params params, listener_events events)
    : impl_(std::make_shared<detail::listener_impl>(std::move(ex), std::move(params), std::move(events))) {}

listener::~listener() { impl_->stop(); }

void listener::start() { impl_->start(); }
void listener::stop() { impl_->stop(); }
listener_stats listener::stats() const { return impl_->stats(); }

}  // namespace dataloader::pg
