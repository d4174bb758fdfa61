// The socket edge: accepts HTTP/1.1 connections (keep-alive, one coroutine per
// connection), bounds what a client may hold (head, body, write and idle timeouts, a head
// limit, a body limit enforced before the body is read, a connection limit, a limit on
// requests in flight answered with 503), and drains on shutdown.
//
// Memory per connection is bounded whatever the client does: one request is read and
// answered at a time, so a client that sends requests without reading the responses
// holds one response and what the kernel buffers, until the write timeout.
#pragma once

#include "dataloader/http/service.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dataloader::http {

struct server_config {
  asio::ip::tcp::endpoint listen{asio::ip::make_address("127.0.0.1"), 8080};
  std::size_t max_connections = 10'000;
  std::size_t max_inflight = 1024;
  std::size_t max_header_bytes = 16 * 1024;          // request line and headers; past it: 431
  std::chrono::milliseconds header_timeout{10'000};  // whole request head, from its first byte
  std::chrono::milliseconds body_timeout{30'000};    // whole body
  std::chrono::milliseconds write_timeout{30'000};   // whole response; a client that does not
                                                     // read is cut off after it
  std::chrono::milliseconds idle_timeout{30'000};    // between keep-alive requests, until the
                                                     // next request's first byte
  std::chrono::milliseconds drain_timeout{10'000};
  bool access_log = false;
};

class server {
 public:
  // Accepts on `io`. Connections go to `connection_loops` in turn, each an event loop run
  // by one thread (`io` may be one of them): a request then runs on one thread from
  // socket to answer, unless it waits for the store. Without loops every connection is a
  // strand on `io`, which any number of threads may run. At exit, destroy `io` before the
  // connection loops: what `io` still holds (an accept in progress, a request waiting for
  // the store) may hold a connection's socket.
  server(asio::io_context& io, service& svc, server_config config,
         std::vector<asio::io_context*> connection_loops = {});
  ~server();

  // Binds and starts accepting. Fails with the system's error (address in use, ...).
  error_code start(std::string& message);
  asio::ip::tcp::endpoint local_endpoint() const;

  // Stops accepting, lets requests in flight finish (at most drain_timeout), then calls
  // `drained` on the server's executor.
  void shutdown(std::function<void()> drained);

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace dataloader::http
