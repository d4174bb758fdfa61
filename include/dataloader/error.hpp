// Error codes of asio-dataloader's own conditions, in one category ("dataloader").
#pragma once

#include <boost/system/error_code.hpp>

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
  connection_lost,        // the connection to the server broke
  server_error,           // the server answered with an error (see diagnostics for SQLSTATE)
  protocol_error,         // libpq reported a failure that is not a server error
  pool_closed,            // the pool was shut down
};

const boost::system::error_category& dataloader_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), dataloader_category()};
}

}  // namespace dataloader

template <>
struct boost::system::is_error_code_enum<dataloader::errc> : std::true_type {};
