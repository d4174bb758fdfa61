// PostgreSQL's own error codes as error_codes: a server error completes with an
// error_code in sqlstate_category() whose value is its five-character SQLSTATE, so that
// callers tell a unique violation from a serialization failure by code, never by text:
//
//   if (ec == pg::sqlstate::unique_violation) ...
//   if (pg::is_server_error(ec)) std::string state = pg::sqlstate_of(ec);  // "23505"
//
// The server's message stays in the operation's diagnostics.
#pragma once

#include "dataloader/error.hpp"

#include <string>
#include <string_view>
#include <type_traits>

namespace dataloader::pg {

// A SQLSTATE ("23505": digits and upper-case letters) as a number, base 36; 0 when
// `code` is not five such characters.
constexpr int encode_sqlstate(std::string_view code) noexcept {
  if (code.size() != 5) return 0;
  int v = 0;
  for (char c : code) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
    else return 0;
    v = v * 36 + d;
  }
  return v;
}

// The SQLSTATEs the library and its users act on; any other arrives as its own value.
enum class sqlstate : int {
  unique_violation = encode_sqlstate("23505"),
  foreign_key_violation = encode_sqlstate("23503"),
  check_violation = encode_sqlstate("23514"),
  serialization_failure = encode_sqlstate("40001"),
  deadlock_detected = encode_sqlstate("40P01"),
  query_canceled = encode_sqlstate("57014"),
  admin_shutdown = encode_sqlstate("57P01"),
  crash_shutdown = encode_sqlstate("57P02"),
  cannot_connect_now = encode_sqlstate("57P03"),
  too_many_connections = encode_sqlstate("53300"),
  read_only_sql_transaction = encode_sqlstate("25006"),
};

const boost::system::error_category& sqlstate_category() noexcept;

inline error_code make_error_code(sqlstate s) noexcept {
  return {static_cast<int>(s), sqlstate_category()};
}

// The error_code of a server error with this SQLSTATE; errc::protocol_error when the
// text is not a SQLSTATE.
error_code sqlstate_error(std::string_view code) noexcept;

// Whether the server answered with an error (as opposed to a client-side condition).
bool is_server_error(const error_code& ec) noexcept;

// "23505" for a server error, else empty.
std::string sqlstate_of(const error_code& ec);

// Errors after which the same statement may succeed if simply sent again: serialization
// failures and deadlocks (class 40), the server shutting down or starting (57P01-57P03),
// too many connections (53300), and a cancelled statement (57014: a server-side
// statement_timeout, or a cancel request meant for a statement that had just finished
// and reached the next one on its connection; PostgreSQL's cancel names a backend, not a
// statement).
bool is_transient(const error_code& ec) noexcept;

}  // namespace dataloader::pg

template <>
struct boost::system::is_error_code_enum<dataloader::pg::sqlstate> : std::true_type {};
