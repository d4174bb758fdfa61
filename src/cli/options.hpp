// dataloader-server's command line (SPEC.md): a subcommand, options with environment
// fallbacks, and one clear line for anything invalid.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace dataloader::cli {

enum class command { serve, migrate, seed_demo, help, version };

struct options {
  command cmd = command::help;
  std::optional<std::string> database_url;
  std::vector<std::string> replica_urls;  // streaming replicas of database_url, read from
  std::chrono::milliseconds max_replica_lag{1000};
  std::size_t cache_entries = 0;  // 0: no cache across requests
  std::chrono::milliseconds cache_ttl{60'000};
  std::chrono::milliseconds slow_statement{100};  // 0: no slow-statement log
  std::string listen_host = "127.0.0.1";
  unsigned short listen_port = 8080;
  std::size_t threads = 0;       // 0: one per core
  std::size_t pool_size = 0;     // 0: pg::default_pool_size()
  std::size_t max_batch_size = 1000;
  std::chrono::microseconds batch_window{0};
  bool smart_batching = true;
  bool coalesce = true;
  std::optional<std::string> api_token;
  std::size_t max_inflight = 1024;
  bool access_log = false;
  // seed-demo
  std::size_t users = 0;
  std::size_t memories_per_user = 10;
};

struct parse_outcome {
  std::optional<options> opts;
  std::string error;  // one line, when opts is empty
};

// `getenv` is injectable for tests.
parse_outcome parse(const std::vector<std::string>& args, const char* (*getenv)(const char*));

std::string usage();

}  // namespace dataloader::cli
