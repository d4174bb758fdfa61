// Every route through service::handle(), no socket (label pg: the store behind it is real):
// the success shape, and each error mapping.
#include "../store/support.hpp"

#include "dataloader/http/service.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace dataloader;
namespace asio = boost::asio;
namespace pg = dataloader::pg;
namespace store = dataloader::store;
namespace bhttp = boost::beast::http;
using json = nlohmann::json;

namespace {

http::request make(bhttp::verb method, std::string target, std::string body = {}, std::string token = {}) {
  http::request req{method, target, 11};
  req.set(bhttp::field::host, "test");
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
  }
  return req;
}

json body_of(const http::response& res) { return json::parse(res.body()); }

std::string error_code_of(const http::response& res) { return body_of(res)["error"]["code"]; }
std::string error_message_of(const http::response& res) { return body_of(res)["error"]["message"]; }

// Runs `f(service)` against a migrated store on the test server.
template <class F>
void with_service(F&& f, http::service_config config = {}) {
  test::with_store([&](pg::connection_pool& pool, store::memory_store& s) -> asio::awaitable<void> {
    loader_registry registry;
    http::service svc(s, pool, registry, config);
    co_await f(svc, pool);
  });
}

// A service whose database cannot be reached (a port nothing listens on).
template <class F>
void with_unreachable_database(F&& f) {
  test::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    pg::pool_params p;
    p.conninfo = "postgresql://127.0.0.1:1/none?connect_timeout=1";
    p.size = 1;
    p.acquire_timeout = std::chrono::milliseconds(300);
    pg::connection_pool pool(ex, p);
    pool.start();
    loader_registry registry;
    store::memory_store s(pool);
    http::service svc(s, pool, registry, {});
    co_await test::sleep_for(std::chrono::milliseconds(100));  // the first connect fails
    co_await f(svc);
    pool.close();
  });
}

}  // namespace

TEST_CASE("GET /healthz answers 200 ok") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/healthz"));
    CHECK(res.result_int() == 200);
    CHECK(body_of(res) == json{{"status", "ok"}});
  });
}

TEST_CASE("GET /readyz answers 200 when PostgreSQL answers") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/readyz"));
    CHECK(res.result_int() == 200);
    CHECK(body_of(res) == json{{"status", "ready"}});
  });
}

TEST_CASE("GET /readyz answers 503 unavailable with Retry-After when PostgreSQL is unreachable") {
  with_unreachable_database([](http::service& svc) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/readyz"));
    CHECK(res.result_int() == 503);
    CHECK(error_code_of(res) == "unavailable");
    CHECK(res[bhttp::field::retry_after] == "1");
  });
}

TEST_CASE("a data route answers 503 unavailable with Retry-After when PostgreSQL is unreachable") {
  with_unreachable_database([](http::service& svc) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/users/u/prefetch"));
    CHECK(res.result_int() == 503);
    CHECK(error_code_of(res) == "unavailable");
    CHECK(res[bhttp::field::retry_after] == "1");
  });
}

TEST_CASE("GET /stats answers the statistics of SPEC.md") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    co_await svc.handle(make(bhttp::verb::get, "/v1/users/routes-stats/prefetch"));
    auto res = co_await svc.handle(make(bhttp::verb::get, "/stats"));
    REQUIRE(res.result_int() == 200);
    auto s = body_of(res);
    for (const char* field : {"total_operations", "loads", "queries", "queries_saved", "efficiency_gain", "batch_size",
                              "loaders", "db", "http"})
      CHECK_MESSAGE(s.contains(field), field);
    CHECK(s["total_operations"].get<int>() >= 1);
    CHECK(s["db"].contains("pool_size"));
  });
}

TEST_CASE("GET /metrics answers the Prometheus text format") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/metrics"));
    CHECK(res.result_int() == 200);
    CHECK(std::string(res[bhttp::field::content_type]).starts_with("text/plain; version=0.0.4"));
    CHECK(res.body().find("# TYPE dataloader_operations_total counter") != std::string::npos);
  });
}

TEST_CASE("GET /v1/profiles answers one entry per id, null for a user without a profile") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    co_await svc.handle(make(bhttp::verb::put, "/v1/users/routes-p1/profile", R"({"profile": "one"})"));
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/profiles?ids=routes-p1,routes-none&id=a%2Cb"));
    CHECK(res.result_int() == 200);
    CHECK(body_of(res) == json{{"profiles", {{"routes-p1", "one"}, {"routes-none", nullptr}, {"a,b", nullptr}}}});
  });
}

TEST_CASE("GET /v1/profiles without ids is 400 naming ids") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/profiles"));
    CHECK(res.result_int() == 400);
    CHECK(error_code_of(res) == "invalid_argument");
    CHECK(error_message_of(res).starts_with("ids:"));
  });
}

TEST_CASE("POST /v1/memories answers how many rows were saved") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::post, "/v1/memories",
        R"({"memories": [{"user_id": "routes-m", "category": "FACT", "key": "k1", "value": "a"},
                         {"user_id": "routes-m", "category": "FACT", "key": "k1", "value": "b"},
                         {"user_id": "routes-m", "category": "GOAL", "key": "k2", "value": "c"}]})"));
    CHECK(res.result_int() == 200);
    CHECK(body_of(res) == json{{"saved", 2}});
  });
}

TEST_CASE("POST /v1/memories with a missing field is 400 naming it") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::post, "/v1/memories",
        R"({"memories": [{"user_id": "u", "category": "FACT", "key": "k"}]})"));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res) == "memories[0].value: missing");
  });
}

TEST_CASE("POST /v1/memories with malformed JSON is 400 naming the body") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::post, "/v1/memories", "{not json"));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res).starts_with("body: malformed JSON at byte"));
  });
}

TEST_CASE("GET /v1/users/{id}/prefetch answers profile, recent memories, onboarding and count") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    co_await svc.handle(make(bhttp::verb::put, "/v1/users/routes-pf/profile", R"({"profile": "hi"})"));
    co_await svc.handle(make(bhttp::verb::put, "/v1/users/routes-pf/onboarding", R"({"state": {"step": 2}})"));
    co_await svc.handle(make(bhttp::verb::post, "/v1/memories",
        R"({"memories": [{"user_id": "routes-pf", "category": "FACT", "key": "a", "value": "1"},
                         {"user_id": "routes-pf", "category": "FACT", "key": "b", "value": "2"}]})"));
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/users/routes-pf/prefetch?memory_limit=1"));
    REQUIRE(res.result_int() == 200);
    auto b = body_of(res);
    CHECK(b["user_id"] == "routes-pf");
    CHECK(b["profile"] == "hi");
    CHECK(b["onboarding"] == json{{"step", 2}});
    CHECK(b["memory_count"] == 2);
    REQUIRE(b["recent_memories"].size() == 1);
    auto m = b["recent_memories"][0];
    CHECK(m["key"] == "b");  // the newest
    for (const char* field : {"user_id", "category", "key", "value", "created_at", "updated_at"})
      CHECK_MESSAGE(m.contains(field), field);
  });
}

TEST_CASE("GET /v1/users/{id}/prefetch with memory_limit out of range is 400 naming it") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/users/u/prefetch?memory_limit=101"));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res).starts_with("memory_limit:"));
  });
}

TEST_CASE("PUT /v1/users/{id}/profile answers updated") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::put, "/v1/users/a%2Fb/profile", R"({"profile": "x"})"));
    CHECK(res.result_int() == 200);
    CHECK(body_of(res) == json{{"user_id", "a/b"}, {"updated", true}});
  });
}

TEST_CASE("PUT /v1/users/{id}/profile with a profile that is not a string is 400") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::put, "/v1/users/u/profile", R"({"profile": 5})"));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res) == "profile: must be a string");
  });
}

TEST_CASE("PUT /v1/users/{id}/onboarding answers updated") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::put, "/v1/users/routes-o/onboarding", R"({"state": {"a": [1]}})"));
    CHECK(res.result_int() == 200);
    CHECK(body_of(res) == json{{"user_id", "routes-o"}, {"updated", true}});
  });
}

TEST_CASE("PUT /v1/users/{id}/onboarding nested past the limit is 400 naming state") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    std::string deep = R"({"state":)" + std::string(200, '[') + std::string(200, ']') + "}";
    auto res = co_await svc.handle(make(bhttp::verb::put, "/v1/users/u/onboarding", deep));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res) == "state: nested deeper than 128 levels");
  });
}

TEST_CASE("GET /v1/users/{id}/memories answers the memories newest first") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    co_await svc.handle(make(bhttp::verb::post, "/v1/memories",
        R"({"memories": [{"user_id": "routes-l", "category": "FACT", "key": "old", "value": "1"}]})"));
    co_await svc.handle(make(bhttp::verb::post, "/v1/memories",
        R"({"memories": [{"user_id": "routes-l", "category": "GOAL", "key": "new", "value": "2"}]})"));
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/users/routes-l/memories"));
    REQUIRE(res.result_int() == 200);
    auto ms = body_of(res)["memories"];
    REQUIRE(ms.size() == 2);
    CHECK(ms[0]["key"] == "new");
    auto goals = co_await svc.handle(make(bhttp::verb::get, "/v1/users/routes-l/memories?category=GOAL&keys=new,old"));
    CHECK(body_of(goals)["memories"].size() == 1);
  });
}

TEST_CASE("GET /v1/users/{id}/memories with a limit that is not a number is 400 naming it") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/users/u/memories?limit=ten"));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res).starts_with("limit:"));
  });
}

TEST_CASE("POST /v1/users/{id}/memories/delete answers how many were deleted") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    co_await svc.handle(make(bhttp::verb::post, "/v1/memories",
        R"({"memories": [{"user_id": "routes-d", "category": "FACT", "key": "k", "value": "1"}]})"));
    auto res = co_await svc.handle(make(bhttp::verb::post, "/v1/users/routes-d/memories/delete", R"({"keys": ["k", "none"]})"));
    CHECK(res.result_int() == 200);
    CHECK(body_of(res) == json{{"deleted", 1}});
  });
}

TEST_CASE("POST /v1/users/{id}/memories/delete with keys not an array is 400 naming keys") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::post, "/v1/users/u/memories/delete", R"({"keys": "k"})"));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res).starts_with("keys:"));
  });
}

TEST_CASE("POST /v1/users/{id}/memories/search answers every asked category") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    co_await svc.handle(make(bhttp::verb::post, "/v1/memories",
        R"({"memories": [{"user_id": "routes-s", "category": "FACT", "key": "k", "value": "1"}]})"));
    auto res = co_await svc.handle(make(bhttp::verb::post, "/v1/users/routes-s/memories/search",
                                        R"({"categories": ["FACT", "GOAL"], "limit_per_category": 5})"));
    REQUIRE(res.result_int() == 200);
    auto r = body_of(res)["results"];
    CHECK(r["FACT"].size() == 1);
    CHECK(r["GOAL"].empty());
  });
}

TEST_CASE("POST /v1/users/{id}/memories/search without limit_per_category is 400 naming it") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::post, "/v1/users/u/memories/search", R"({"categories": []})"));
    CHECK(res.result_int() == 400);
    CHECK(error_message_of(res) == "limit_per_category: missing");
  });
}

TEST_CASE("an unknown path is 404 not_found") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v2/nothing"));
    CHECK(res.result_int() == 404);
    CHECK(error_code_of(res) == "not_found");
  });
}

TEST_CASE("a known path with another method is 405 listing the allowed ones") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::delete_, "/v1/users/u/prefetch"));
    CHECK(res.result_int() == 405);
    CHECK(res[bhttp::field::allow] == "GET, HEAD");
    auto post_only = co_await svc.handle(make(bhttp::verb::get, "/v1/memories"));
    CHECK(post_only[bhttp::field::allow] == "POST");
  });
}

TEST_CASE("a malformed percent-encoding in the path is 400") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/users/bad%zz/prefetch"));
    CHECK(res.result_int() == 400);
    CHECK(error_code_of(res) == "invalid_argument");
  });
}

TEST_CASE("HEAD answers the GET's status and Content-Length without a body") {
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto get = co_await svc.handle(make(bhttp::verb::get, "/v1/users/routes-head/prefetch"));
    auto head = co_await svc.handle(make(bhttp::verb::head, "/v1/users/routes-head/prefetch"));
    CHECK(head.result_int() == 200);
    CHECK(head.body().empty());
    CHECK(head[bhttp::field::content_length] == std::to_string(get.body().size()));
  });
}

TEST_CASE("with an API token, a request without it is 401") {
  http::service_config config;
  config.api_token = "s3cret";
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto res = co_await svc.handle(make(bhttp::verb::get, "/stats"));
    CHECK(res.result_int() == 401);
    CHECK(error_code_of(res) == "unauthenticated");
    CHECK(res[bhttp::field::www_authenticate] == "Bearer");
  }, config);
}

TEST_CASE("with an API token, a wrong token is 401") {
  http::service_config config;
  config.api_token = "s3cret";
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto wrong = co_await svc.handle(make(bhttp::verb::get, "/stats", {}, "guess"));
    CHECK(wrong.result_int() == 401);
    CHECK(error_message_of(wrong) == "wrong API token");
  }, config);
}

TEST_CASE("with an API token, the right token is served") {
  http::service_config config;
  config.api_token = "s3cret";
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    auto right = co_await svc.handle(make(bhttp::verb::get, "/stats", {}, "s3cret"));
    CHECK(right.result_int() == 200);
  }, config);
}

TEST_CASE("with an API token, /healthz and /readyz are served without it") {
  http::service_config config;
  config.api_token = "s3cret";
  with_service([](http::service& svc, pg::connection_pool&) -> asio::awaitable<void> {
    CHECK((co_await svc.handle(make(bhttp::verb::get, "/healthz"))).result_int() == 200);
    CHECK((co_await svc.handle(make(bhttp::verb::get, "/readyz"))).result_int() == 200);
  }, config);
}

TEST_CASE("a failure the client cannot act on is 500 with a request id and none of the database's text") {
  with_service([](http::service& svc, pg::connection_pool& pool) -> asio::awaitable<void> {
    // An onboarding state deeper than the JSON limit, written by another client: the store
    // refuses to decode it.
    static const pg::statement deep{"routes_deep_state",
        "INSERT INTO onboarding (user_id, state) VALUES ('routes-deep', (repeat('[', 200) || repeat(']', 200))::jsonb) "
        "ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state"};
    co_await test::sql(pool, deep);
    auto res = co_await svc.handle(make(bhttp::verb::get, "/v1/users/routes-deep/prefetch"));
    CHECK(res.result_int() == 500);
    CHECK(error_code_of(res) == "internal");
    const auto message = error_message_of(res);
    CHECK(message.starts_with("internal error (request id "));
    CHECK(message.find("decode") == std::string::npos);
  });
}
