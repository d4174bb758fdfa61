#include "options.hpp"

#include <charconv>
#include <functional>
#include <map>

namespace dataloader::cli {

namespace {

options only(command c) {
  options o;
  o.cmd = c;
  return o;
}

std::optional<std::size_t> whole(const std::string& s, std::size_t lo, std::size_t hi) {
  std::size_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

}  // namespace

std::string usage() {
  return R"(usage:
  dataloader-server serve     [options]   run the HTTP service
  dataloader-server migrate   [options]   create or upgrade the schema, then exit
  dataloader-server seed-demo [options] --users N [--memories-per-user M]
                                          bulk-load synthetic users, then exit
  dataloader-server --help | --version

options (environment fallback in brackets):
  --database-url URL      libpq URL or connection string [DATABASE_URL]
  --replica-url URL       a streaming replica to read from; repeatable
                          [DATALOADER_REPLICA_URLS, comma-separated]
  --max-replica-lag-ms N  a replica further behind is not read from, default 1000
                          [DATALOADER_MAX_REPLICA_LAG_MS]
  --cache-entries N       users' snapshots and profiles kept across requests, coherent through
                          PostgreSQL notifications; default 0 = no cache [DATALOADER_CACHE_ENTRIES]
  --cache-ttl-ms N        an entry is read again after this long, default 60000 [DATALOADER_CACHE_TTL_MS]
  --listen HOST:PORT      default 127.0.0.1:8080 [DATALOADER_LISTEN]
  --threads N             event-loop threads, default one per core [DATALOADER_THREADS]
  --pool-size N           PostgreSQL connections, default one per core, at least 2 [DATALOADER_POOL_SIZE]
  --max-batch-size N      keys per batch, default 1000 [DATALOADER_MAX_BATCH_SIZE]
  --batch-window-us N     wait this long to gather a batch, default 0 = end of tick [DATALOADER_BATCH_WINDOW_US]
  --smart-batching on|off while every PostgreSQL connection is busy, a ready batch keeps
                          gathering keys until one is free; default on [DATALOADER_SMART_BATCHING]
  --coalesce on|off       off = one statement per lookup (the N+1 baseline) [DATALOADER_COALESCE]
  --api-token TOKEN       require Authorization: Bearer TOKEN [DATALOADER_API_TOKEN]
  --max-inflight N        requests in flight before answering 503, default 1024 [DATALOADER_MAX_INFLIGHT]
  --access-log on|off     one line per request on stderr, default off [DATALOADER_ACCESS_LOG]
  --slow-statement-ms N   log (stderr) and count each statement slower than this, default 100,
                          0 = off [DATALOADER_SLOW_STATEMENT_MS]
  --users N, --memories-per-user M   for seed-demo (default M = 10)
)";
}

parse_outcome parse(const std::vector<std::string>& args, const char* (*getenv)(const char*)) {
  options o;
  if (args.empty()) return {std::nullopt, "missing command (serve, migrate, seed-demo); see --help"};
  const std::string& first = args[0];
  if (first == "--help" || first == "-h" || first == "help") return {only(command::help), {}};
  if (first == "--version") return {only(command::version), {}};
  if (first == "serve") o.cmd = command::serve;
  else if (first == "migrate") o.cmd = command::migrate;
  else if (first == "seed-demo") o.cmd = command::seed_demo;
  else return {std::nullopt, "unknown command '" + first + "' (expected serve, migrate or seed-demo)"};

  std::string error;
  // Each setter returns an error line or "".
  using setter = std::function<std::string(const std::string&, const std::string&)>;
  auto count = [](std::size_t& field, std::size_t lo, std::size_t hi) -> setter {
    return [&field, lo, hi](const std::string& name, const std::string& v) -> std::string {
      auto n = whole(v, lo, hi);
      if (!n) return name + ": must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + " (got '" + v + "')";
      field = *n;
      return {};
    };
  };
  auto on_off = [](bool& field) -> setter {
    return [&field](const std::string& name, const std::string& v) -> std::string {
      if (v == "on") field = true;
      else if (v == "off") field = false;
      else return name + ": must be on or off (got '" + v + "')";
      return {};
    };
  };
  std::size_t window_us = 0;
  std::size_t max_lag_ms = 1000;
  std::size_t cache_ttl_ms = 60'000;
  std::size_t slow_ms = 100;
  bool replicas_from_env = false;
  const std::map<std::string, std::pair<const char*, setter>> table{
      {"--replica-url", {"DATALOADER_REPLICA_URLS", [&](const std::string& name, const std::string& v) -> std::string {
         // The environment lists them comma-separated; the option is repeated instead.
         std::vector<std::string> urls;
         if (name.rfind("--", 0) == 0) {
           if (replicas_from_env) o.replica_urls.clear();  // the command line wins
           replicas_from_env = false;
           urls.push_back(v);
         } else {
           replicas_from_env = true;
           for (std::size_t from = 0;;) {
             const auto comma = v.find(',', from);
             urls.push_back(v.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
             if (comma == std::string::npos) break;
             from = comma + 1;
           }
         }
         for (auto& u : urls) {
           if (u.empty()) return name + ": an empty URL";
           o.replica_urls.push_back(std::move(u));
         }
         return {};
       }}},
      {"--max-replica-lag-ms", {"DATALOADER_MAX_REPLICA_LAG_MS", count(max_lag_ms, 0, 3'600'000)}},
      {"--cache-entries", {"DATALOADER_CACHE_ENTRIES", count(o.cache_entries, 0, 100'000'000)}},
      {"--cache-ttl-ms", {"DATALOADER_CACHE_TTL_MS", count(cache_ttl_ms, 1, 86'400'000)}},
      {"--slow-statement-ms", {"DATALOADER_SLOW_STATEMENT_MS", count(slow_ms, 0, 3'600'000)}},
      {"--database-url", {"DATABASE_URL", [&](const std::string& name, const std::string& v) -> std::string {
         if (v.empty()) return name + ": must not be empty";
         o.database_url = v;
         return {};
       }}},
      {"--listen", {"DATALOADER_LISTEN", [&](const std::string& name, const std::string& v) -> std::string {
         const auto colon = v.rfind(':');
         if (colon == std::string::npos || colon == 0) return name + ": must be HOST:PORT (got '" + v + "')";
         std::string host = v.substr(0, colon);
         if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
         auto port = whole(v.substr(colon + 1), 0, 65535);
         if (!port) return name + ": port must be 0 to 65535 (got '" + v.substr(colon + 1) + "')";
         o.listen_host = host;
         o.listen_port = static_cast<unsigned short>(*port);
         return {};
       }}},
      {"--threads", {"DATALOADER_THREADS", count(o.threads, 1, 256)}},
      {"--pool-size", {"DATALOADER_POOL_SIZE", count(o.pool_size, 1, 1000)}},
      {"--max-batch-size", {"DATALOADER_MAX_BATCH_SIZE", count(o.max_batch_size, 1, 100000)}},
      {"--batch-window-us", {"DATALOADER_BATCH_WINDOW_US", count(window_us, 0, 10'000'000)}},
      {"--smart-batching", {"DATALOADER_SMART_BATCHING", on_off(o.smart_batching)}},
      {"--coalesce", {"DATALOADER_COALESCE", on_off(o.coalesce)}},
      {"--api-token", {"DATALOADER_API_TOKEN", [&](const std::string& name, const std::string& v) -> std::string {
         if (v.empty()) return name + ": must not be empty";
         o.api_token = v;
         return {};
       }}},
      {"--max-inflight", {"DATALOADER_MAX_INFLIGHT", count(o.max_inflight, 1, 1'000'000)}},
      {"--access-log", {"DATALOADER_ACCESS_LOG", on_off(o.access_log)}},
      {"--users", {nullptr, count(o.users, 1, 100'000'000)}},
      {"--memories-per-user", {nullptr, count(o.memories_per_user, 0, 10'000)}},
  };

  // Environment first, so that the command line wins.
  for (const auto& [flag, entry] : table) {
    if (!entry.first) continue;
    if (const char* v = getenv(entry.first); v && *v) {
      if (auto e = entry.second(std::string(entry.first), v); !e.empty()) return {std::nullopt, e};
    }
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool has_value = false;
    if (auto eq = flag.find('='); eq != std::string::npos && flag.rfind("--", 0) == 0) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (flag == "--help" || flag == "-h") return {only(command::help), {}};
    auto it = table.find(flag);
    if (it == table.end()) return {std::nullopt, "unknown option '" + flag + "'; see --help"};
    if (!has_value) {
      if (i + 1 >= args.size()) return {std::nullopt, flag + ": missing value"};
      value = args[++i];
    }
    if (auto e = it->second.second(flag, value); !e.empty()) return {std::nullopt, e};
  }
  o.batch_window = std::chrono::microseconds(window_us);
  o.max_replica_lag = std::chrono::milliseconds(max_lag_ms);
  o.cache_ttl = std::chrono::milliseconds(cache_ttl_ms);
  o.slow_statement = std::chrono::milliseconds(slow_ms);
  if (o.cmd == command::seed_demo && o.users == 0) return {std::nullopt, "seed-demo: --users N is required"};
  return {o, {}};
}

}  // namespace dataloader::cli
