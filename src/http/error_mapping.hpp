// The one place where errors become HTTP statuses (SPEC.md): bad input 400; the database
// unreachable, overloaded, restarting, or a transient conflict (serialization failure,
// deadlock) 503 with Retry-After; anything else 500, whose body names a request id instead
// of the cause, which goes to the log under that id (it may carry the database's text).
#pragma once

#include "request_parsing.hpp"

#include "dataloader/diagnostics.hpp"

#include <string>

namespace dataloader::http::detail {

problem from_error(const error_code& ec, const diagnostics& d);
// As from_error, for routes that write: a write whose outcome is unknown (the connection
// broke, or the deadline passed, after it was sent) says so, and that a retry is safe.
problem from_write_error(const error_code& ec, const diagnostics& d);

// A 500: logs `cause` under a fresh request id and returns the problem naming the id.
problem internal_problem(const std::string& cause);

}  // namespace dataloader::http::detail
