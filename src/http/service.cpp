#include "dataloader/http/service.hpp"

#include "dataloader/http/url.hpp"
#include "json_writer.hpp"
#include "dataloader/json.hpp"
#include "dataloader/pg/sqlstate.hpp"
#include "dataloader/pg/types.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <variant>

namespace dataloader::http {

using json = nlohmann::json;

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

namespace {

const pg::statement health_check{"health_check", "SELECT 1"};

response make_json_text(unsigned status, std::string body, unsigned version, bool keep_alive) {
  response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response make_json(unsigned status, const json& body, unsigned version, bool keep_alive) {
  return make_json_text(status, body.dump(-1, ' ', false, json::error_handler_t::replace), version, keep_alive);
}

using detail::json_writer;

void write_memory(json_writer& w, const store::memory& m) {
  w.begin_object();
  w.key("category").string(m.category);
  w.key("created_at").timestamp(m.created_at);
  w.key("key").string(m.key);
  w.key("updated_at").timestamp(m.updated_at);
  w.key("user_id").string(m.user_id);
  w.key("value").string(m.value);
  w.end_object();
}

void write_memories(json_writer& w, const std::vector<store::memory>& ms) {
  w.begin_array();
  for (const auto& m : ms) write_memory(w, m);
  w.end_array();
}

std::string memories_body(const std::vector<store::memory>& ms) {
  std::string body;
  json_writer w(body);
  w.begin_object().key("memories");
  write_memories(w, ms);
  w.end_object();
  return body;
}

std::string prefetch_body(const store::prefetch_result& r) {
  std::string body;
  body.reserve(512 + r.recent_memories.size() * 256);
  json_writer w(body);
  w.begin_object();
  w.key("memory_count").integer(r.memory_count);
  w.key("onboarding").optional(r.onboarding);
  w.key("profile").optional(r.profile);
  w.key("recent_memories");
  write_memories(w, r.recent_memories);
  w.key("user_id").string(r.user_id);
  w.end_object();
  return body;
}

std::string search_body(const store::search_results& results) {
  std::string body;
  json_writer w(body);
  w.begin_object().key("results").begin_object();
  for (const auto& [category, ms] : results) {
    w.key(category);
    write_memories(w, ms);
  }
  w.end_object().end_object();
  return body;
}

// A request-scoped failure on its way to an error response.
struct problem {
  unsigned status;
  std::string code;
  std::string message;
};

problem bad(std::string message) { return {400, "invalid_argument", std::move(message)}; }

// Every store error becomes an HTTP status here, and only here: bad input 400; the
// database unreachable, overloaded, restarting, or a transient conflict (serialization
// failure, deadlock) 503 with Retry-After; anything else 500, whose body names a request
// id instead of the database's text, which goes to the log under that id.
problem from_store(const error_code& ec, const diagnostics& d) {
  if (ec == errc::invalid_argument) return bad(d.message());
  if (ec == errc::pool_timeout || ec == errc::connection_lost || ec == errc::timeout || ec == errc::pool_closed ||
      pg::is_transient(ec))
    return {503, "unavailable", describe(ec, d)};
  static std::atomic<std::uint64_t> last_id{0};
  const auto id = ++last_id;
  std::fprintf(stderr, "dataloader-server: internal error, request id %llu: %s\n",
               static_cast<unsigned long long>(id), describe(ec, d).c_str());
  return {500, "internal", "internal error (request id " + std::to_string(id) + "; details in the server log)"};
}

std::optional<int> parse_int(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<problem> int_param(const target& t, std::string_view name, int lo, int hi, int& out) {
  auto v = t.first(name);
  if (!v) return std::nullopt;
  auto n = parse_int(*v);
  if (!n || *n < lo || *n > hi)
    return bad(std::string(name) + ": must be a whole number from " + std::to_string(lo) + " to " +
               std::to_string(hi) + " (got '" + *v + "')");
  out = *n;
  return std::nullopt;
}

std::vector<std::string> split_commas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    std::size_t start = 0;
    while (true) {
      const auto comma = v.find(',', start);
      out.push_back(v.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

// The body as a JSON object, or why not.
std::variant<json, problem> json_body(const request& req) {
  json_error e;
  auto body = parse_json(req.body(), e);
  if (!body) return bad((e.field.empty() ? std::string("body") : e.field) + ": " + e.message);
  if (!body->is_object()) return bad("body: must be a JSON object");
  return std::move(*body);
}

std::optional<problem> string_field(const json& obj, const std::string& where, const char* name, std::string& out) {
  auto it = obj.find(name);
  if (it == obj.end()) return bad(where + name + ": missing");
  if (!it->is_string()) return bad(where + name + ": must be a string");
  out = it->get<std::string>();
  return std::nullopt;
}

std::optional<problem> string_array(const json& obj, const char* name, std::size_t max, std::vector<std::string>& out,
                                    bool required = true) {
  auto it = obj.find(name);
  if (it == obj.end()) return required ? std::optional<problem>(bad(std::string(name) + ": missing")) : std::nullopt;
  if (!it->is_array()) return bad(std::string(name) + ": must be an array of strings");
  if (it->size() > max) return bad(std::string(name) + ": at most " + std::to_string(max) + " entries (got " + std::to_string(it->size()) + ")");
  for (std::size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) return bad(std::string(name) + "[" + std::to_string(i) + "]: must be a string");
    out.push_back((*it)[i].get<std::string>());
  }
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Runs over the longer input whatever the contents, so the time says nothing of them.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace

response service::error(unsigned status, std::string_view code, std::string_view message, unsigned version,
                        bool keep_alive) {
  auto res = make_json(status, {{"error", {{"code", code}, {"message", message}}}}, version, keep_alive);
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
    res = error(500, "internal", std::string("unexpected failure: ") + e.what());
  }
  res.version(req.version());
  res.keep_alive(res.keep_alive() && req.keep_alive());
  if (req.method() == bhttp::verb::head) {  // the GET's headers, Content-Length included
    const auto length = res.body().size();
    res.body().clear();
    res.content_length(length);
  }
  if (res.result_int() >= 500)  // one line per database or internal error
    std::fprintf(stderr, "dataloader-server: %u on %s %s: %s\n", res.result_int(), std::string(req.method_string()).c_str(),
                 std::string(req.target()).c_str(), res.body().c_str());
  counters_.end();
  counters_.record(res.result_int(), std::chrono::steady_clock::now() - started);
  co_return res;
}

asio::awaitable<response> service::route(const request& req) {
  const unsigned v = req.version();
  auto fail = [&](const problem& p) {
    auto r = error(p.status, p.code, p.message, v);
    return r;
  };
  auto ok = [&](const json& body) { return make_json(200, body, v, true); };
  auto ok_text = [&](std::string body) { return make_json_text(200, std::move(body), v, true); };
  auto wrong_method = [&](const char* allow) {
    auto r = error(405, "method_not_allowed", std::string("allowed: ") + allow, v);
    r.set(bhttp::field::allow, allow);
    return r;
  };

  std::string parse_error;
  auto t = parse_target(req.target(), parse_error);
  if (!t) co_return fail(bad(parse_error));
  const auto& seg = t->segments;
  // HEAD is GET without the body (RFC 9110 9.3.2): handle() drops the body afterwards.
  const auto method = req.method() == bhttp::verb::head ? bhttp::verb::get : req.method();

  if (seg.size() == 1 && seg[0] == "healthz") {
    if (method != bhttp::verb::get) co_return wrong_method("GET, HEAD");
    co_return ok({{"status", "ok"}});
  }
  if (seg.size() == 1 && seg[0] == "readyz") {
    if (method != bhttp::verb::get) co_return wrong_method("GET, HEAD");
    diagnostics d;
    pg::query_options o;
    o.timeout = std::chrono::milliseconds(1000);
    auto [ec, r] = co_await pool_.async_query(health_check, {}, o, d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return fail({503, "unavailable", "database: " + describe(ec, d)});
    co_return ok({{"status", "ready"}});
  }

  if (config_.api_token) {
    const auto auth = req[bhttp::field::authorization];
    constexpr std::string_view scheme = "Bearer ";
    const bool presented = auth.size() > scheme.size() && auth.substr(0, scheme.size()) == scheme;
    if (!presented || !constant_time_equal(auth.substr(scheme.size()), *config_.api_token))
      co_return fail({401, "unauthenticated", presented ? "wrong API token" : "missing Authorization: Bearer token"});
  }

  if (seg.size() == 1 && seg[0] == "stats") {
    if (method != bhttp::verb::get) co_return wrong_method("GET, HEAD");
    auto r = make_json(200, json::parse(stats_json()), v, true);
    co_return r;
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    if (method != bhttp::verb::get) co_return wrong_method("GET, HEAD");
    response r{bhttp::status::ok, v};
    r.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    r.body() = metrics_text();
    r.prepare_payload();
    co_return r;
  }

  const bool v1 = seg.size() >= 2 && seg[0] == "v1";
  // GET /v1/profiles?ids=a,b,c (or repeated id=)
  if (v1 && seg.size() == 2 && seg[1] == "profiles") {
    if (method != bhttp::verb::get) co_return wrong_method("GET, HEAD");
    auto ids = split_commas(t->all("ids"));
    for (auto& id : t->all("id")) ids.push_back(id);
    if (ids.empty()) co_return fail(bad("ids: give ?ids=a,b,c or repeated ?id="));
    if (ids.size() > config_.max_items)
      co_return fail(bad("ids: at most " + std::to_string(config_.max_items) + " (got " + std::to_string(ids.size()) + ")"));
    diagnostics d;
    auto [ec, r] = co_await store_.async_get_profiles(ids, d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return fail(from_store(ec, d));
    json profiles = json::object();
    for (std::size_t i = 0; i < ids.size(); ++i) profiles[ids[i]] = r[i] ? json(*r[i]) : json(nullptr);
    co_return ok({{"profiles", profiles}});
  }
  // POST /v1/memories
  if (v1 && seg.size() == 2 && seg[1] == "memories") {
    if (method != bhttp::verb::post) co_return wrong_method("POST");
    auto body = json_body(req);
    if (auto* p = std::get_if<problem>(&body)) co_return fail(*p);
    const auto& obj = std::get<json>(body);
    auto list = obj.find("memories");
    if (list == obj.end()) co_return fail(bad("memories: missing"));
    if (!list->is_array()) co_return fail(bad("memories: must be an array"));
    if (list->size() > config_.max_items)
      co_return fail(bad("memories: at most " + std::to_string(config_.max_items) + " entries (got " + std::to_string(list->size()) + ")"));
    std::vector<store::memory_input> items;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto& m = (*list)[i];
      const std::string where = "memories[" + std::to_string(i) + "].";
      if (!m.is_object()) co_return fail(bad("memories[" + std::to_string(i) + "]: must be an object"));
      store::memory_input in;
      for (auto [name, field] : {std::pair{"user_id", &in.user_id}, {"category", &in.category}, {"key", &in.key}, {"value", &in.value}})
        if (auto p = string_field(m, where, name, *field)) co_return fail(*p);
      items.push_back(std::move(in));
    }
    diagnostics d;
    auto [ec, r] = co_await store_.async_save_memories(std::move(items), d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return fail(from_store(ec, d));
    co_return ok({{"saved", r}});
  }

  // /v1/users/{user_id}/...
  if (v1 && seg.size() >= 4 && seg[1] == "users") {
    const std::string& user = seg[2];
    const auto rest = std::vector<std::string>(seg.begin() + 3, seg.end());
    if (rest.size() == 1 && rest[0] == "prefetch") {
      if (method != bhttp::verb::get) co_return wrong_method("GET, HEAD");
      int limit = store::default_memory_limit;
      if (auto p = int_param(*t, "memory_limit", 1, store::max_memory_limit, limit)) co_return fail(*p);
      diagnostics d;
      auto [ec, r] = co_await store_.async_prefetch(user, limit, d, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return fail(from_store(ec, d));
      co_return ok_text(prefetch_body(r));
    }
    if (rest.size() == 1 && rest[0] == "profile") {
      if (method != bhttp::verb::put) co_return wrong_method("PUT");
      auto body = json_body(req);
      if (auto* p = std::get_if<problem>(&body)) co_return fail(*p);
      std::string profile;
      if (auto p = string_field(std::get<json>(body), "", "profile", profile)) co_return fail(*p);
      diagnostics d;
      auto [ec, r] = co_await store_.async_put_profile(user, std::move(profile), d, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return fail(from_store(ec, d));
      co_return ok({{"user_id", user}, {"updated", true}});
    }
    if (rest.size() == 1 && rest[0] == "onboarding") {
      if (method != bhttp::verb::put) co_return wrong_method("PUT");
      auto body = json_body(req);
      if (auto* p = std::get_if<problem>(&body)) co_return fail(*p);
      const auto& obj = std::get<json>(body);
      auto state = obj.find("state");
      if (state == obj.end()) co_return fail(bad("state: missing"));
      if (!state->is_object()) co_return fail(bad("state: must be a JSON object"));
      diagnostics d;
      auto [ec, r] = co_await store_.async_put_onboarding(user, *state, d, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return fail(from_store(ec, d));
      co_return ok({{"user_id", user}, {"updated", true}});
    }
    if (rest.size() == 1 && rest[0] == "memories") {
      if (method != bhttp::verb::get) co_return wrong_method("GET, HEAD");
      store::memory_filter filter;
      filter.category = t->first("category");
      if (auto keys = t->all("keys"); !keys.empty()) filter.keys = split_commas(keys);
      if (filter.keys && filter.keys->size() > config_.max_items) co_return fail(bad("keys: too many"));
      if (auto p = int_param(*t, "limit", 1, store::max_list_limit, filter.limit)) co_return fail(*p);
      diagnostics d;
      auto [ec, r] = co_await store_.async_get_memories(user, std::move(filter), d, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return fail(from_store(ec, d));
      co_return ok_text(memories_body(r));
    }
    if (rest.size() == 2 && rest[0] == "memories" && rest[1] == "delete") {
      if (method != bhttp::verb::post) co_return wrong_method("POST");
      auto body = json_body(req);
      if (auto* p = std::get_if<problem>(&body)) co_return fail(*p);
      const auto& obj = std::get<json>(body);
      std::vector<std::string> keys;
      if (auto p = string_array(obj, "keys", config_.max_items, keys)) co_return fail(*p);
      std::optional<std::string> category;
      if (obj.contains("category")) {
        std::string c;
        if (auto p = string_field(obj, "", "category", c)) co_return fail(*p);
        category = std::move(c);
      }
      diagnostics d;
      auto [ec, r] = co_await store_.async_delete_memories(user, std::move(keys), std::move(category), d, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return fail(from_store(ec, d));
      co_return ok({{"deleted", r}});
    }
    if (rest.size() == 2 && rest[0] == "memories" && rest[1] == "search") {
      if (method != bhttp::verb::post) co_return wrong_method("POST");
      auto body = json_body(req);
      if (auto* p = std::get_if<problem>(&body)) co_return fail(*p);
      const auto& obj = std::get<json>(body);
      std::vector<std::string> categories;
      if (auto p = string_array(obj, "categories", 100, categories)) co_return fail(*p);
      auto limit_it = obj.find("limit_per_category");
      if (limit_it == obj.end()) co_return fail(bad("limit_per_category: missing"));
      if (!limit_it->is_number_integer() || limit_it->get<long long>() < 1 || limit_it->get<long long>() > store::max_memory_limit)
        co_return fail(bad("limit_per_category: must be a whole number from 1 to " + std::to_string(store::max_memory_limit)));
      diagnostics d;
      auto [ec, r] = co_await store_.async_search(user, std::move(categories), limit_it->get<int>(), d, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return fail(from_store(ec, d));
      co_return ok_text(search_body(r));
    }
  }
  co_return fail({404, "not_found", "no route for " + std::string(req.target())});
}

}  // namespace dataloader::http
