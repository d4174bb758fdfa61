// A dedicated connection that LISTENs on PostgreSQL notification channels, and says when
// it may have missed some.
//
// PostgreSQL delivers a notification only to sessions listening when it commits; a
// session that drops loses whatever was sent until it listens again. A consumer that
// keeps derived state (a cache) therefore needs three events, in this order per
// connection: `listening` (every notification committed from now on will arrive),
// `notified` (zero or more), `lost` (the connection is gone: from here until the next
// `listening`, notifications are lost). The listener reconnects by itself, with backoff.
//
// A silent network (no FIN, no RST) would otherwise look like a quiet channel: while
// listening, a heartbeat round trip runs every `heartbeat_interval`, and one left
// unanswered for as long counts as a lost connection.
//
// Threads: everything runs on the executor given, which must be serialized (a strand,
// or an io_context run by one thread); the events are called there, never inline from
// start() or stop(). Lifetime: after stop() or destruction no event is called.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dataloader::pg {

namespace asio = boost::asio;

namespace detail {
class listener_impl;
}

struct listener_params {
  std::string conninfo;               // libpq URL or key=value list
  std::vector<std::string> channels;  // identifiers; quoted as such when sent
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds retry_interval{100};  // reconnect backoff, doubling up to the cap
  std::chrono::milliseconds max_retry_interval{1'000};
  std::chrono::milliseconds heartbeat_interval{1'000};
};

struct notification {
  std::string channel;
  std::string payload;
  int sender_pid = 0;  // the backend that sent it
};

struct listener_events {
  std::function<void()> listening;
  std::function<void(const notification&)> notified;
  std::function<void(const std::string& why)> lost;  // once per connection that was listening
};

struct listener_stats {
  bool listening = false;
  std::uint64_t connects = 0;       // connections that reached `listening`
  std::uint64_t losses = 0;         // `lost` events
  std::uint64_t notifications = 0;  // `notified` events
};

class listener {
 public:
  listener(asio::any_io_executor ex, listener_params params, listener_events events);
  ~listener();
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  void start();  // idempotent
  void stop();   // closes the connection; no event is called afterwards
  // Safe from any thread.
  listener_stats stats() const;

 private:
  std::shared_ptr<detail::listener_impl> impl_;
};

}  // namespace dataloader::pg
