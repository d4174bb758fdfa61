// Request targets and the command line, without sockets or a database.
#include "dataloader/http/url.hpp"

#include "../../src/cli/options.hpp"

#include <doctest/doctest.h>

#include <map>

using namespace dataloader;

TEST_CASE("path segments are split first, then percent-decoded") {
  std::string error;
  auto t = http::parse_target("/v1/users/a%2Fb%20c%25/prefetch?memory_limit=5", error);
  REQUIRE(t);
  CHECK(t->segments == std::vector<std::string>{"v1", "users", "a/b c%", "prefetch"});
  CHECK(t->first("memory_limit") == "5");
  auto u = http::parse_target("/v1/users/%C3%BC%E2%9C%93/prefetch", error);
  CHECK(u->segments[2] == "ü✓");
}

TEST_CASE("malformed percent-encoding is refused") {
  std::string error;
  CHECK(!http::parse_target("/v1/users/%zz/prefetch", error));
  CHECK(error == "malformed percent-encoding in the path");
  CHECK(!http::parse_target("/v1/users/abc%2", error));
  CHECK(!http::parse_target("/v1/profiles?ids=a%", error));
  CHECK(error == "malformed percent-encoding in the query string");
  CHECK(!http::percent_decode("%"));
  CHECK(http::percent_decode("a+b") == "a+b");
}

TEST_CASE("repeated query parameters keep their order") {
  std::string error;
  auto t = http::parse_target("/v1/profiles?id=b&x=1&id=a%2Cc", error);
  CHECK(t->all("id") == std::vector<std::string>{"b", "a,c"});
  CHECK(!t->first("missing"));
}

namespace {
std::map<std::string, std::string> env_vars;
const char* fake_env(const char* name) {
  auto it = env_vars.find(name);
  return it == env_vars.end() ? nullptr : it->second.c_str();
}
cli::parse_outcome parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  env_vars = std::move(env);
  return cli::parse(args, fake_env);
}
}  // namespace

TEST_CASE("options take their defaults, then the environment, then the command line") {
  auto d = parse({"serve"});
  REQUIRE(d.opts);
  CHECK(d.opts->listen_port == 8080);
  CHECK(d.opts->max_batch_size == 1000);
  CHECK(d.opts->coalesce);
  auto e = parse({"serve", "--max-batch-size=50"}, {{"DATALOADER_MAX_BATCH_SIZE", "10"}, {"DATALOADER_COALESCE", "off"},
                                                    {"DATABASE_URL", "postgresql:///x"}, {"DATALOADER_LISTEN", "[::1]:9000"}});
  REQUIRE(e.opts);
  CHECK(e.opts->max_batch_size == 50);
  CHECK(!e.opts->coalesce);
  CHECK(e.opts->database_url == "postgresql:///x");
  CHECK(e.opts->listen_host == "::1");
  CHECK(e.opts->listen_port == 9000);
}

TEST_CASE("an invalid option or value is one line naming it") {
  CHECK(parse({"serve", "--threads", "0"}).error == "--threads: must be a whole number from 1 to 256 (got '0')");
  CHECK(parse({"serve", "--coalesce", "yes"}).error == "--coalesce: must be on or off (got 'yes')");
  CHECK(parse({"serve", "--listen", "8080"}).error == "--listen: must be HOST:PORT (got '8080')");
  CHECK(parse({"serve", "--nope"}).error == "unknown option '--nope'; see --help");
  CHECK(parse({"serve", "--threads"}).error == "--threads: missing value");
  CHECK(parse({"serve"}, {{"DATALOADER_THREADS", "many"}}).error ==
        "DATALOADER_THREADS: must be a whole number from 1 to 256 (got 'many')");
  CHECK(parse({"seed-demo"}).error == "seed-demo: --users N is required");
  CHECK(parse({}).error.find("missing command") == 0);
}

TEST_CASE("replica URLs: repeated on the command line, comma-separated in the environment, and the command line wins") {
  auto none = parse({"serve"});
  REQUIRE(none.opts);
  CHECK(none.opts->replica_urls.empty());
  CHECK(none.opts->max_replica_lag == std::chrono::milliseconds(1000));
  auto flags = parse({"serve", "--replica-url", "postgresql:///r1", "--replica-url=postgresql:///r2",
                      "--max-replica-lag-ms", "250"});
  REQUIRE(flags.opts);
  CHECK(flags.opts->replica_urls == std::vector<std::string>{"postgresql:///r1", "postgresql:///r2"});
  CHECK(flags.opts->max_replica_lag == std::chrono::milliseconds(250));
  auto env = parse({"serve"}, {{"DATALOADER_REPLICA_URLS", "postgresql:///a,postgresql:///b"},
                               {"DATALOADER_MAX_REPLICA_LAG_MS", "0"}});
  REQUIRE(env.opts);
  CHECK(env.opts->replica_urls == std::vector<std::string>{"postgresql:///a", "postgresql:///b"});
  CHECK(env.opts->max_replica_lag == std::chrono::milliseconds(0));
  auto both = parse({"serve", "--replica-url", "postgresql:///c"}, {{"DATALOADER_REPLICA_URLS", "postgresql:///a"}});
  REQUIRE(both.opts);
  CHECK(both.opts->replica_urls == std::vector<std::string>{"postgresql:///c"});
  CHECK(parse({"serve"}, {{"DATALOADER_REPLICA_URLS", "postgresql:///a,,postgresql:///b"}}).error ==
        "DATALOADER_REPLICA_URLS: an empty URL");
  CHECK(parse({"serve", "--max-replica-lag-ms", "-1"}).error ==
        "--max-replica-lag-ms: must be a whole number from 0 to 3600000 (got '-1')");
}
