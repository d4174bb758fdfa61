#include "dataloader/http/service.hpp"

#include "error_mapping.hpp"
#include "request_parsing.hpp"
#include "responses.hpp"
#include "routes.hpp"

#include "dataloader/http/url.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace dataloader::http {

void http_counters::record(unsigned status, std::chrono::steady_clock::duration took) noexcept {
  if (status < by_status_.size()) by_status_[status].fetch_add(1, std::memory_order_relaxed);
  const double ms = std::chrono::duration<double, std::milli>(took).count();
  latency_sum_us_.fetch_add(static_cast<std::uint64_t>(ms * 1000.0), std::memory_order_relaxed);
  for (std::size_t i = 0; i < latency_bucket_bounds_ms.size(); ++i)
    if (ms <= latency_bucket_bounds_ms[i]) {
      latency_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
}

service::service(store::memory_store& store, pg::connection_pool& pool, loader_registry& registry,
                 service_config config)
    : store_(store), pool_(pool), registry_(registry), config_(std::move(config)) {}

void service::set_not_ready(std::string reason) {
  std::lock_guard lock(reason_mutex_);
  not_ready_reason_ = std::move(reason);
  ready_.store(false, std::memory_order_release);
}

void service::set_ready() { ready_.store(true, std::memory_order_release); }

std::optional<std::string> service::not_ready_reason() const {
  if (ready_.load(std::memory_order_acquire)) return std::nullopt;
  std::lock_guard lock(reason_mutex_);
  return not_ready_reason_;
}

response service::error(unsigned status, std::string_view code, std::string_view message, unsigned version,
                        bool keep_alive) {
  auto res = detail::make_json(status, {{"error", {{"code", code}, {"message", message}}}}, version, keep_alive);
  if (status == 503) res.set(bhttp::field::retry_after, "1");
  if (status == 401) res.set(bhttp::field::www_authenticate, "Bearer");
  return res;
}

asio::awaitable<response> service::handle(request req) {
  const auto started = std::chrono::steady_clock::now();
  counters_.begin();
  response res;
  try {
    res = co_await route(req);
  } catch (const std::exception& e) {
    const auto p = detail::internal_problem(std::string("unexpected failure: ") + e.what());
    res = error(p.status, p.code, p.message);
  }
  res.version(req.version());
  res.keep_alive(res.keep_alive() && req.keep_alive());
  if (req.method() == bhttp::verb::head) {  // the GET's headers, Content-Length included
    const auto length = res.body().size();
    res.body().clear();
    res.content_length(length);
  }
  // One line per error of ours or the database's: a 500 was logged with its cause and
  // request id where it was made (error_mapping.cpp), the others are logged here.
  if (res.result_int() > 500)
    std::fprintf(stderr, "dataloader-server: %u on %s %s: %s\n", res.result_int(), std::string(req.method_string()).c_str(),
                 std::string(req.target()).c_str(), res.body().c_str());
  counters_.end();
  counters_.record(res.result_int(), std::chrono::steady_clock::now() - started);
  co_return res;
}

asio::awaitable<response> service::route(const request& req) {
  using namespace detail;
  const unsigned v = req.version();
  std::string parse_error;
  auto t = parse_target(req.target(), parse_error);
  if (!t) co_return error(400, "invalid_argument", parse_error, v);
  const auto method = req.method() == bhttp::verb::head ? bhttp::verb::get : req.method();

  const detail::route* found = nullptr;
  const std::string* user_id = nullptr;
  bool path_known = false, open = false;
  std::string allow;
  for (const auto& r : routes()) {
    const std::string* user = nullptr;
    if (!path_matches(r, t->segments, user)) continue;
    path_known = true;
    open = open || r.open;
    if (!allow.empty()) allow += ", ";
    allow += r.method == bhttp::verb::get ? "GET, HEAD" : std::string(bhttp::to_string(r.method));
    if (r.method == method) {
      found = &r;
      user_id = user;
    }
  }

  if (config_.api_token && !open) {
    const auto auth = req[bhttp::field::authorization];
    constexpr std::string_view scheme = "Bearer ";
    const bool presented = auth.size() > scheme.size() && auth.substr(0, scheme.size()) == scheme;
    if (!presented || !constant_time_equal(auth.substr(scheme.size()), *config_.api_token))
      co_return error(401, "unauthenticated", presented ? "wrong API token" : "missing Authorization: Bearer token", v);
  }
  if (!path_known) co_return error(404, "not_found", "no route for " + std::string(req.target()), v);
  if (!found) {
    auto r = error(405, "method_not_allowed", "allowed: " + allow, v);
    r.set(bhttp::field::allow, allow);
    co_return r;
  }
  if (found->needs_schema)
    if (auto why = not_ready_reason()) co_return error(503, "unavailable", *why, v);
  route_context context{*this, req, *t, user_id};
  co_return co_await found->handle(context);
}

}  // namespace dataloader::http
