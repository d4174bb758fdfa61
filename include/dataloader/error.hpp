// Error codes of asio-dataloader's own conditions, in one category ("dataloader").
#pragma once

#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace dataloader {

using boost::system::error_code;

enum class errc {
  // loader
  not_found = 1,          // a map-form batch function returned no value for the key
  batch_failed,           // the batch function failed the whole call
  wrong_result_count,     // the batch function returned a different number of results than keys
  batch_threw,            // the batch function threw an exception
  batch_completed_twice,  // a batch_completion was invoked after it had already completed
  batch_abandoned,        // a batch_completion was destroyed without being invoked

  // input validation (all layers)
  invalid_argument,

  // PostgreSQL layer
  pool_timeout,           // no connection became free before the acquire deadline
  timeout,                // a statement ran past its deadline and was cancelled
  connection_lost,        // the connection to the server broke, or none could be made
  outcome_unknown,        // the connection broke after the statements were sent: they may
                          // or may not have been applied
  protocol_error,         // libpq reported a failure that is not a server error
  // (a server error completes with its SQLSTATE: pg/sqlstate.hpp)
  pool_closed,            // the pool was shut down

  internal,               // a bug inside the library (an unexpected exception); see diagnostics
};

namespace detail {
class dataloader_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "dataloader"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_found: return "not found";
      case errc::batch_failed: return "batch function failed";
      case errc::wrong_result_count: return "batch function returned the wrong number of results";
      case errc::batch_threw: return "batch function threw an exception";
      case errc::batch_completed_twice: return "batch function completed twice";
      case errc::batch_abandoned: return "batch function dropped its completion without calling it";
      case errc::invalid_argument: return "invalid argument";
      case errc::pool_timeout: return "timed out waiting for a pooled connection";
      case errc::timeout: return "statement timed out";
      case errc::connection_lost: return "connection to the database lost";
      case errc::outcome_unknown: return "connection lost after the statement was sent; it may or may not have been applied";
      case errc::protocol_error: return "database client error";
      case errc::pool_closed: return "connection pool closed";
      case errc::internal: return "internal error";
    }
    return "unknown dataloader error " + std::to_string(ev);
  }
};

}  // namespace detail

// Header-only (the loader layer is): one instance per program through the inline function.
inline const boost::system::error_category& dataloader_category() noexcept {
  static const detail::dataloader_category_impl instance;
  return instance;
}

inline error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), dataloader_category()};
}

}  // namespace dataloader

template <>
struct boost::system::is_error_code_enum<dataloader::errc> : std::true_type {};
