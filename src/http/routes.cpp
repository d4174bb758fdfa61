#include "routes.hpp"

#include "dashboard.hpp"
#include "error_mapping.hpp"
#include "request_parsing.hpp"
#include "responses.hpp"

#include "dataloader/pg/lsn.hpp"
#include "dataloader/pg/statement.hpp"
#include "dataloader/store/consistency.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

namespace dataloader::http::detail {
namespace {

using json = nlohmann::json;
constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);

const pg::statement health_check{"health_check", "SELECT 1"};

response fail(const route_context& c, const problem& p) {
  return service::error(p.status, p.code, p.message, c.req.version());
}
response ok(const route_context& c, const json& body) { return make_json(200, body, c.req.version(), true); }
response ok_text(const route_context& c, std::string body) {
  return make_json_text(200, std::move(body), c.req.version(), true);
}

// Read-your-writes across instances (SPEC "Beyond one process"): a read's
// Dataloader-Min-LSN becomes the store's min_position; every successful read and write
// answer says its position in Dataloader-LSN.
constexpr std::string_view min_lsn_header = "Dataloader-Min-LSN";
constexpr std::string_view lsn_header = "Dataloader-LSN";

std::optional<problem> read_position(const route_context& c, store::consistency& out) {
  auto it = c.req.find(min_lsn_header);
  if (it == c.req.end()) return std::nullopt;
  const std::string_view given(it->value().data(), it->value().size());
  auto p = pg::parse_lsn(given);
  if (!p)
    return bad(std::string(min_lsn_header) + ": must be a WAL position X/Y (1 to 8 hexadecimal digits each), got \"" +
               std::string(given.substr(0, 40)) + (given.size() > 40 ? "...\"" : "\""));
  out.min_position = *p;
  return std::nullopt;
}

// The store names min_position in its refusal of a position from the future; the client
// sent a header.
problem read_problem(const error_code& ec, const diagnostics& d) {
  auto p = from_error(ec, d);
  constexpr std::string_view store_name = "min_position: ";
  if (ec == errc::invalid_argument && p.message.starts_with(store_name))
    p.message = std::string(min_lsn_header) + ": " + p.message.substr(store_name.size());
  return p;
}

response positioned(response r, const store::consistency& position) {
  r.set(lsn_header, pg::to_string(position.position));
  return r;
}

// GET /healthz
asio::awaitable<response> healthz(route_context& c) { co_return ok(c, {{"status", "ok"}}); }

// GET /readyz: 200 when the schema is migrated and PostgreSQL answers within a second.
asio::awaitable<response> readyz(route_context& c) {
  if (auto why = c.svc.not_ready_reason()) co_return fail(c, {503, "unavailable", *why});
  diagnostics d;
  pg::query_options o;
  o.timeout = std::chrono::milliseconds(1000);
  auto [ec, r] = co_await c.svc.pool().async_query(health_check, {}, o, d, as_tuple_awaitable);
  if (ec) co_return fail(c, {503, "unavailable", "database: " + describe(ec, d)});
  co_return ok(c, {{"status", "ready"}});
}

// GET /stats
asio::awaitable<response> stats(route_context& c) { co_return ok_text(c, c.svc.stats_json()); }

// GET /metrics (Prometheus text format 0.0.4)
asio::awaitable<response> metrics(route_context& c) {
  response r{bhttp::status::ok, c.req.version()};
  r.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  r.body() = c.svc.metrics_text();
  r.prepare_payload();
  co_return r;
}

// GET /dashboard: open (the page holds no figures; it asks for the token when one is set).
asio::awaitable<response> dashboard(route_context& c) {
  co_return dashboard_response(c.svc.config().api_token.has_value(), c.req.version());
}

// GET /v1/profiles?ids=a,b,c (or repeated id=)
asio::awaitable<response> get_profiles(route_context& c) {
  const auto max = c.svc.config().max_items;
  auto ids = split_commas(c.where.all("ids"));
  for (auto& id : c.where.all("id")) ids.push_back(id);
  if (ids.empty()) co_return fail(c, bad("ids: give ?ids=a,b,c or repeated ?id="));
  if (ids.size() > max)
    co_return fail(c, bad("ids: at most " + std::to_string(max) + " (got " + std::to_string(ids.size()) + ")"));
  store::consistency position;
  if (auto p = read_position(c, position)) co_return fail(c, *p);
  diagnostics d;
  auto [ec, r] = co_await c.svc.store().async_get_profiles(ids, position, d, as_tuple_awaitable);
  if (ec) co_return fail(c, read_problem(ec, d));
  json profiles = json::object();
  for (std::size_t i = 0; i < ids.size(); ++i) profiles[ids[i]] = r[i] ? json(*r[i]) : json(nullptr);
  co_return positioned(ok(c, {{"profiles", profiles}}), position);
}

// POST /v1/memories {"memories": [{"user_id", "category", "key", "value"}...]}
asio::awaitable<response> save_memories(route_context& c) {
  const auto max = c.svc.config().max_items;
  auto body = json_body(c.req);
  if (auto* p = std::get_if<problem>(&body)) co_return fail(c, *p);
  std::vector<store::memory_input> items;
  if (auto p = memories_field(std::get<json>(body), max, items)) co_return fail(c, *p);
  store::consistency position;
  diagnostics d;
  auto [ec, saved] = co_await c.svc.store().async_save_memories(std::move(items), position, d, as_tuple_awaitable);
  if (ec) co_return fail(c, from_write_error(ec, d));
  co_return positioned(ok(c, {{"saved", saved}}), position);
}

// GET /v1/users/{user_id}/prefetch[?memory_limit=N]
asio::awaitable<response> prefetch(route_context& c) {
  int limit = store::default_memory_limit;
  if (auto p = int_param(c.where, "memory_limit", 1, store::max_memory_limit, limit)) co_return fail(c, *p);
  store::consistency position;
  if (auto p = read_position(c, position)) co_return fail(c, *p);
  // A cache hit is answered here, on the connection's thread, without a hop to the store,
  // from the snapshot's text: rendered by its first hit, then kept with it.
  if (auto hit = c.svc.store().try_cached_prefetch(*c.user_id, limit, position)) {
    auto text = std::dynamic_pointer_cast<const prefetch_text>(hit->rendering);
    if (!text) {
      text = std::make_shared<const prefetch_text>(*hit->snapshot);
      c.svc.store().keep_rendering(*c.user_id, *hit, text);
    }
    co_return positioned(ok_text(c, text->body(hit->memories)), position);
  }
  diagnostics d;
  auto [ec, r] = co_await c.svc.store().async_prefetch(*c.user_id, limit, position, d, as_tuple_awaitable);
  if (ec) co_return fail(c, read_problem(ec, d));
  co_return positioned(ok_text(c, prefetch_body(r)), position);
}

// PUT /v1/users/{user_id}/profile {"profile": string}
asio::awaitable<response> put_profile(route_context& c) {
  auto body = json_body(c.req);
  if (auto* p = std::get_if<problem>(&body)) co_return fail(c, *p);
  std::string profile;
  if (auto p = string_field(std::get<json>(body), "", "profile", profile)) co_return fail(c, *p);
  store::consistency position;
  diagnostics d;
  auto [ec, done] =
      co_await c.svc.store().async_put_profile(*c.user_id, std::move(profile), position, d, as_tuple_awaitable);
  if (ec) co_return fail(c, from_write_error(ec, d));
  co_return positioned(ok(c, {{"user_id", *c.user_id}, {"updated", done}}), position);
}

// PUT /v1/users/{user_id}/onboarding {"state": object}
asio::awaitable<response> put_onboarding(route_context& c) {
  auto body = json_body(c.req);
  if (auto* p = std::get_if<problem>(&body)) co_return fail(c, *p);
  auto& obj = std::get<json>(body);
  auto state = obj.find("state");
  if (state == obj.end()) co_return fail(c, bad("state: missing"));
  if (!state->is_object()) co_return fail(c, bad("state: must be a JSON object"));
  store::consistency position;
  diagnostics d;
  auto [ec, done] =
      co_await c.svc.store().async_put_onboarding(*c.user_id, std::move(*state), position, d, as_tuple_awaitable);
  if (ec) co_return fail(c, from_write_error(ec, d));
  co_return positioned(ok(c, {{"user_id", *c.user_id}, {"updated", done}}), position);
}

// GET /v1/users/{user_id}/memories[?category=C][&keys=k1,k2][&limit=N][&after=CURSOR]
asio::awaitable<response> get_memories(route_context& c) {
  const auto max = c.svc.config().max_items;
  store::memory_filter filter;
  filter.category = c.where.first("category");
  filter.after = c.where.first("after");
  if (auto keys = c.where.all("keys"); !keys.empty()) filter.keys = split_commas(keys);
  if (filter.keys && filter.keys->size() > max)
    co_return fail(c, bad("keys: at most " + std::to_string(max) + " (got " + std::to_string(filter.keys->size()) + ")"));
  if (auto p = int_param(c.where, "limit", 1, store::max_list_limit, filter.limit)) co_return fail(c, *p);
  store::consistency position;
  if (auto p = read_position(c, position)) co_return fail(c, *p);
  diagnostics d;
  auto [ec, r] = co_await c.svc.store().async_get_memories(*c.user_id, std::move(filter), position, d, as_tuple_awaitable);
  if (ec) co_return fail(c, read_problem(ec, d));
  co_return positioned(ok_text(c, memories_body(r)), position);
}

// POST /v1/users/{user_id}/memories/delete {"keys": [...], "category"?: string}
asio::awaitable<response> delete_memories(route_context& c) {
  auto body = json_body(c.req);
  if (auto* p = std::get_if<problem>(&body)) co_return fail(c, *p);
  const auto& obj = std::get<json>(body);
  std::vector<std::string> keys;
  if (auto p = string_array(obj, "keys", c.svc.config().max_items, keys)) co_return fail(c, *p);
  std::optional<std::string> category;
  if (obj.contains("category")) {
    std::string given;
    if (auto p = string_field(obj, "", "category", given)) co_return fail(c, *p);
    category = std::move(given);
  }
  store::consistency position;
  diagnostics d;
  auto [ec, deleted] = co_await c.svc.store().async_delete_memories(*c.user_id, std::move(keys), std::move(category),
                                                                    position, d, as_tuple_awaitable);
  if (ec) co_return fail(c, from_write_error(ec, d));
  co_return positioned(ok(c, {{"deleted", deleted}}), position);
}

// POST /v1/users/{user_id}/memories/search {"categories": [...], "limit_per_category": N}
asio::awaitable<response> search(route_context& c) {
  auto body = json_body(c.req);
  if (auto* p = std::get_if<problem>(&body)) co_return fail(c, *p);
  const auto& obj = std::get<json>(body);
  std::vector<std::string> categories;
  if (auto p = string_array(obj, "categories", 100, categories)) co_return fail(c, *p);
  auto limit_it = obj.find("limit_per_category");
  if (limit_it == obj.end()) co_return fail(c, bad("limit_per_category: missing"));
  if (!limit_it->is_number_integer() || limit_it->get<long long>() < 1 || limit_it->get<long long>() > store::max_memory_limit)
    co_return fail(c, bad("limit_per_category: must be a whole number from 1 to " + std::to_string(store::max_memory_limit)));
  store::consistency position;
  if (auto p = read_position(c, position)) co_return fail(c, *p);
  diagnostics d;
  auto [ec, r] = co_await c.svc.store().async_search(*c.user_id, std::move(categories), limit_it->get<int>(), position,
                                                     d, as_tuple_awaitable);
  if (ec) co_return fail(c, read_problem(ec, d));
  co_return positioned(ok_text(c, search_body(r)), position);
}

}  // namespace

const std::vector<route>& routes() {
  using bhttp::verb;
  static const std::vector<route> table{
      {verb::get, {"healthz"}, true, false, healthz},
      {verb::get, {"readyz"}, true, false, readyz},
      {verb::get, {"stats"}, false, false, stats},
      {verb::get, {"metrics"}, false, false, metrics},
      {verb::get, {"dashboard"}, true, false, dashboard},
      {verb::get, {"v1", "profiles"}, false, true, get_profiles},
      {verb::post, {"v1", "memories"}, false, true, save_memories},
      {verb::get, {"v1", "users", "{user_id}", "prefetch"}, false, true, prefetch},
      {verb::put, {"v1", "users", "{user_id}", "profile"}, false, true, put_profile},
      {verb::put, {"v1", "users", "{user_id}", "onboarding"}, false, true, put_onboarding},
      {verb::get, {"v1", "users", "{user_id}", "memories"}, false, true, get_memories},
      {verb::post, {"v1", "users", "{user_id}", "memories", "delete"}, false, true, delete_memories},
      {verb::post, {"v1", "users", "{user_id}", "memories", "search"}, false, true, search},
  };
  return table;
}

bool path_matches(const route& r, const std::vector<std::string>& segments, const std::string*& user_id) {
  if (segments.size() != r.path.size()) return false;
  const std::string* user = nullptr;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (r.path[i] == "{user_id}") user = &segments[i];
    else if (segments[i] != r.path[i]) return false;
  }
  user_id = user;
  return true;
}

}  // namespace dataloader::http::detail
