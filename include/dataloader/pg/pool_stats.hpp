// Counters of a connection pool, as reported under /stats "db".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace dataloader::pg {

// Round-trip latency buckets, upper bounds in microseconds; the last is +Inf.
inline constexpr std::array<std::uint64_t, 14> round_trip_bucket_bounds_us{
    100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000,
    1'000'000, UINT64_MAX};

struct pool_stats {
  std::uint64_t statements = 0;   // statements executed (not counting prepares)
  std::uint64_t prepares = 0;     // statements prepared on a connection
  std::uint64_t round_trips = 0;  // flushes: everything a tick sent on a connection, and its results
  std::uint64_t errors = 0;       // statement groups that failed, for any reason
  std::uint64_t timeouts = 0;     // groups cancelled at their deadline
  std::uint64_t retries = 0;      // groups resent: reads after their connection died, stale plans
  std::uint64_t reconnects = 0;   // connections re-established after a failure
  std::uint64_t connect_failures = 0;
  std::size_t pool_size = 0;      // configured connections
  std::size_t connected = 0;      // connections usable now
  std::size_t in_use = 0;         // connections with statements in flight, or leased
  std::size_t waiting = 0;        // requests and acquires waiting for a connection
  std::array<std::uint64_t, round_trip_bucket_bounds_us.size()> round_trip_histogram{};
  std::uint64_t round_trip_us_sum = 0;
  // Statements past pool_params::slow_statement_threshold, by statement name.
  std::map<std::string, std::uint64_t> slow_statements;
};

}  // namespace dataloader::pg
