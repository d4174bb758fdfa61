// The socket edge: accepts HTTP/1.1 connections (keep-alive, one coroutine per
// connection), bounds what a client may hold (header, body and idle timeouts, a body
// limit enforced before the body is read, a connection limit, a limit on requests in
// flight answered with 503), and drains on shutdown.
#pragma once

#include "dataloader/http/service.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace dataloader::http {

struct server_config {
  asio::ip::tcp::endpoint listen{asio::ip::make_address("127.0.0.1"), 8080};
  std::size_t max_connections = 10'000;
  std::size_t max_inflight = 1024;
  std::chrono::milliseconds header_timeout{10'000};  // whole request head, from its first byte
  std::chrono::milliseconds body_timeout{30'000};    // whole body; also bounds writing the response
  std::chrono::milliseconds idle_timeout{30'000};    // between keep-alive requests
  std::chrono::milliseconds drain_timeout{10'000};
  bool access_log = false;
};

class server {
 public:
  server(asio::io_context& io, service& svc, server_config config);
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
