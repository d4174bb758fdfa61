#include "dataloader/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>

#include <cstdio>
#include <ctime>
#include <string_view>
#include <optional>

namespace dataloader::http {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// The Date header's IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7), made
// once per second per thread.
std::string_view http_date() {
  thread_local std::time_t cached_second = -1;
  thread_local char text[32];
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return text;
}

namespace detail {

// What every connection shares. Connections keep it alive, and it holds nothing that
// belongs to an event loop: a connection may outlive the acceptor's loop at shutdown
// (the loops are destroyed one after the other), and must not take the acceptor with it.
struct connections : std::enable_shared_from_this<connections> {
  connections(service& svc, server_config cfg) : svc(svc), config(cfg) {}

  service& svc;
  server_config config;
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> draining{false};

  response body_too_large(unsigned version) {
    svc.counters().record(413, {});
    return service::error(413, "too_large",
                          "body exceeds the limit of " + std::to_string(svc.config().max_body_bytes) + " bytes",
                          version, false);
  }

  // Fails when the client went away or did not read the response within the write
  // timeout; the connection is then done.
  asio::awaitable<error_code> write(beast::tcp_stream& stream, response& res) {
    res.set(bhttp::field::date, http_date());
    stream.expires_after(config.write_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (ec == beast::error::timeout) svc.counters().time_out_connection();
    co_return ec;
  }

  asio::awaitable<void> session(tcp::socket socket) {
    auto self = shared_from_this();
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
      parser.body_limit(svc.config().max_body_bytes);
      if (!first && buffer.size() == 0) {
        // Between keep-alive requests: the idle timeout runs until the next request's
        // first byte; from there the head has the header timeout, as on a new connection.
        stream.expires_after(config.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), asio::as_tuple(asio::use_awaitable));
        if (ec) {
          if (ec == beast::error::timeout) svc.counters().time_out_connection();
          break;
        }
        buffer.commit(n);
      }
      first = false;
      stream.expires_after(config.header_timeout);
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) {  // closed, timed out, or garbage: nothing more to say on this connection
        if (ec == bhttp::error::header_limit) {
          auto res = service::error(431, "too_large",
                                    "request head (request line and headers) over the limit of " +
                                        std::to_string(config.max_header_bytes) + " bytes",
                                    11, false);
          svc.counters().record(431, {});
          co_await write(stream, res);
        } else if (ec == bhttp::error::body_limit) {  // Content-Length over the limit: refused unread
          auto res = body_too_large(parser.get().version());
          co_await write(stream, res);
        } else if (ec == beast::error::timeout) {
          svc.counters().time_out_connection();
        } else if (ec != bhttp::error::end_of_stream && ec != asio::error::connection_reset && ec != asio::error::eof) {
          auto res = service::error(400, "invalid_argument", "malformed HTTP request: " + ec.message(), 11, false);
          co_await write(stream, res);
        }
        break;
      }
      stream.expires_after(config.body_timeout);
      auto [ec2, n2] = co_await bhttp::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (ec2) {
        if (ec2 == beast::error::timeout) svc.counters().time_out_connection();
        if (ec2 == bhttp::error::body_limit) {  // a chunked body that grew past the limit
          auto res = body_too_large(parser.get().version());
          co_await write(stream, res);
        }
        break;
      }
      stream.expires_never();  // the handler bounds its own time (statement deadlines)
      auto req = parser.release();
      const auto method = std::string(req.method_string());
      const auto target = std::string(req.target());
      const auto started = std::chrono::steady_clock::now();
      response res;
      if (in_flight.fetch_add(1) >= config.max_inflight) {
        in_flight.fetch_sub(1);
        res = service::error(503, "unavailable", "too many requests in flight; retry shortly", req.version(), req.keep_alive());
        svc.counters().record(503, {});
      } else {
        res = co_await svc.handle(std::move(req));
        in_flight.fetch_sub(1);
      }
      if (draining.load()) res.keep_alive(false);
      const error_code written = co_await write(stream, res);
      if (config.access_log)
        std::fprintf(stderr, "%s %s %u %.2f ms\n", method.c_str(), target.c_str(), res.result_int(),
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
      // A failed write ends the connection: requests it pipelined and we have buffered
      // would otherwise each be answered into a closed socket.
      if (written || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
};

}  // namespace detail

struct server::state : std::enable_shared_from_this<server::state> {
  state(asio::io_context& io, service& svc, server_config cfg, std::vector<asio::io_context*> loops)
      : io(io), conns(std::make_shared<detail::connections>(svc, cfg)), loops(std::move(loops)), acceptor(asio::make_strand(io)) {}

  asio::io_context& io;
  std::shared_ptr<detail::connections> conns;
  std::vector<asio::io_context*> loops;
  std::size_t next_loop = 0;  // used on the acceptor's strand only
  tcp::acceptor acceptor;

  // A loop run by one thread needs no strand: the connection's coroutine is all that
  // touches its socket, and the loop runs one handler at a time.
  asio::any_io_executor connection_executor() {
    if (loops.empty()) return asio::make_strand(io);
    return loops[next_loop++ % loops.size()]->get_executor();
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    asio::steady_timer pause(acceptor.get_executor());
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(connection_executor(), asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec == boost::system::errc::too_many_files_open || ec == boost::system::errc::too_many_files_open_in_system ||
          ec == boost::system::errc::no_buffer_space) {
        // Out of descriptors: the connection stays in the backlog, so accepting again at
        // once would spin. Wait for a connection of ours to close.
        conns->svc.counters().reject_connection();
        pause.expires_after(std::chrono::milliseconds(50));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      if (ec) continue;  // e.g. the client went away: keep serving the others
      if (conns->svc.counters().connections() >= conns->config.max_connections) {
        conns->svc.counters().reject_connection();
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      conns->svc.counters().open_connection();
      auto ex = socket.get_executor();
      asio::co_spawn(ex, conns->session(std::move(socket)),
                     [conns = conns](std::exception_ptr) { conns->svc.counters().close_connection(); });
    }
  }
};

server::server(asio::io_context& io, service& svc, server_config config, std::vector<asio::io_context*> connection_loops)
    : state_(std::make_shared<state>(io, svc, config, std::move(connection_loops))) {}

server::~server() = default;

error_code server::start(std::string& message) {
  auto& a = state_->acceptor;
  error_code ec;
  auto fail = [&](const char* what) {
    message = std::string(what) + " " + state_->conns->config.listen.address().to_string() + ":" +
              std::to_string(state_->conns->config.listen.port()) + ": " + ec.message();
    return ec;
  };
  a.open(state_->conns->config.listen.protocol(), ec);
  if (ec) return fail("cannot open a socket for");
  a.set_option(tcp::acceptor::reuse_address(true), ec);
  a.bind(state_->conns->config.listen, ec);
  if (ec) return fail("cannot listen on");
  a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("cannot listen on");
  asio::co_spawn(a.get_executor(), state_->accept_loop(), asio::detached);
  return {};
}

tcp::endpoint server::local_endpoint() const {
  error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

void server::shutdown(std::function<void()> drained) {
  auto s = state_;
  asio::dispatch(s->acceptor.get_executor(), [s, drained = std::move(drained)]() mutable {
    s->conns->draining = true;
    error_code ignored;
    s->acceptor.close(ignored);
    // Poll until the requests in flight are answered, or the drain time is up.
    auto timer = std::make_shared<asio::steady_timer>(s->acceptor.get_executor());
    const auto deadline = std::chrono::steady_clock::now() + s->conns->config.drain_timeout;
    auto check = std::make_shared<std::function<void()>>();
    *check = [s, timer, deadline, drained = std::move(drained), check]() mutable {
      if (s->conns->in_flight.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
        auto done = std::move(drained);
        *check = nullptr;  // break the self-reference
        done();
        return;
      }
      timer->expires_after(std::chrono::milliseconds(20));
      timer->async_wait([check](error_code) {
        if (*check) (*check)();
      });
    };
    (*check)();
  });
}

}  // namespace dataloader::http
