#include "error_mapping.hpp"

#include "dataloader/pg/sqlstate.hpp"

#include <atomic>
#include <cstdint>
#include <cstdio>

namespace dataloader::http::detail {

problem from_error(const error_code& ec, const diagnostics& d) {
  if (ec == errc::invalid_argument) return bad(d.message());
  if (ec == errc::pool_timeout || ec == errc::connection_lost || ec == errc::outcome_unknown || ec == errc::timeout ||
      ec == errc::pool_closed || pg::is_transient(ec))
    return {503, "unavailable", describe(ec, d)};
  return internal_problem(describe(ec, d));
}

problem from_write_error(const error_code& ec, const diagnostics& d) {
  // Sent, then no answer: the statement may have committed. Every write route is an
  // upsert or a delete, so running it again converges on the same rows.
  if (ec == errc::outcome_unknown || ec == errc::timeout)
    return {503, "unavailable",
            "the database did not confirm the write (" + describe(ec, d) +
                "): it may or may not have been applied; retrying it is safe (saves and deletes are idempotent)"};
  return from_error(ec, d);
}

problem internal_problem(const std::string& cause) {
  static std::atomic<std::uint64_t> last_id{0};
  const auto id = last_id.fetch_add(1, std::memory_order_relaxed) + 1;
  std::fprintf(stderr, "dataloader-server: internal error, request id %llu: %s\n", static_cast<unsigned long long>(id),
               cause.c_str());
  return {500, "internal", "internal error (request id " + std::to_string(id) + "; details in the server log)"};
}

}  // namespace dataloader::http::detail
