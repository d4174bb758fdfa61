// The HTTP API of SPEC.md as plain functions from request to response: routing,
// validation at the edge, authentication, JSON shapes, error mapping, /stats and /metrics.
// No sockets here (see server.hpp), so every route can be tested by calling handle().
#pragma once

#include "dataloader/loader/registry.hpp"
#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/store/memory_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace dataloader::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

struct service_config {
  std::optional<std::string> api_token;  // when set, every route but /healthz and /readyz needs it
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_items = 10'000;        // entries per save, keys per delete, ids per lookup
};

// Request latency buckets, upper bounds in milliseconds; the last is +Inf.
inline constexpr std::array<double, 12> latency_bucket_bounds_ms{1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 1e300};

class http_counters {
 public:
  void begin() noexcept { in_flight_.fetch_add(1, std::memory_order_relaxed); requests_.fetch_add(1, std::memory_order_relaxed); }
  void end() noexcept { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  void record(unsigned status, std::chrono::steady_clock::duration took) noexcept;
  std::int64_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }
  std::uint64_t responses(unsigned status) const noexcept {
    return status < by_status_.size() ? by_status_[status].load(std::memory_order_relaxed) : 0;
  }
  std::uint64_t bucket(std::size_t i) const noexcept { return latency_[i].load(std::memory_order_relaxed); }
  double latency_sum_ms() const noexcept { return static_cast<double>(latency_sum_us_.load(std::memory_order_relaxed)) / 1000.0; }
  std::uint64_t rejected_connections() const noexcept { return rejected_.load(std::memory_order_relaxed); }
  void reject_connection() noexcept { rejected_.fetch_add(1, std::memory_order_relaxed); }
  // Open client connections, and those closed because a head, body, write or idle timeout
  // passed (slow or absent clients).
  std::size_t connections() const noexcept { return connections_.load(std::memory_order_relaxed); }
  void open_connection() noexcept { connections_.fetch_add(1, std::memory_order_relaxed); }
  void close_connection() noexcept { connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::uint64_t timed_out_connections() const noexcept { return timed_out_.load(std::memory_order_relaxed); }
  void time_out_connection() noexcept { timed_out_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::uint64_t> requests_{0}, latency_sum_us_{0}, rejected_{0}, timed_out_{0};
  std::atomic<std::size_t> connections_{0};
  std::array<std::atomic<std::uint64_t>, 600> by_status_{};
  std::array<std::atomic<std::uint64_t>, latency_bucket_bounds_ms.size()> latency_{};
};

class service {
 public:
  service(store::memory_store& store, pg::connection_pool& pool, loader_registry& registry,
          service_config config);

  // The response to `req`: routed through the route table (routes.cpp), authenticated,
  // validated, errors mapped to statuses. Never throws; HEAD is answered as GET without
  // the body. Safe from any thread; the store's work runs on its own executor.
  asio::awaitable<response> handle(request req);

  // A JSON error response (SPEC.md): {"error": {"code", "message"}}.
  static response error(unsigned status, std::string_view code, std::string_view message,
                        unsigned version = 11, bool keep_alive = true);

  std::string stats_json() const;
  std::string metrics_text() const;
  http_counters& counters() noexcept { return counters_; }
  const service_config& config() const noexcept { return config_; }
  store::memory_store& store() noexcept { return store_; }

  // Readiness beyond the pool's: a service that starts before its schema is migrated
  // (the database unreachable at start) is marked not ready with the reason; until marked
  // ready again, the data routes and /readyz answer 503 with that reason. Ready by default.
  void set_not_ready(std::string reason);
  void set_ready();
  std::optional<std::string> not_ready_reason() const;
  pg::connection_pool& pool() noexcept { return pool_; }

 private:
  asio::awaitable<response> route(const request& req);

  store::memory_store& store_;
  pg::connection_pool& pool_;
  loader_registry& registry_;
  service_config config_;
  http_counters counters_;
  std::atomic<bool> ready_{true};
  mutable std::mutex reason_mutex_;
  std::string not_ready_reason_;  // guarded by reason_mutex_
};

}  // namespace dataloader::http
