// libpq's messages end in a newline (sometimes followed by spaces or more lines' ends):
// the text without them, ready to go into one log line or error body.
#pragma once

#include <libpq-fe.h>

#include <string>

namespace dataloader::pg::detail {

inline std::string libpq_text(const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// The connection's last error, or `fallback` when libpq has none to say.
inline std::string libpq_message(PGconn* c, const char* fallback) {
  std::string m = libpq_text(c ? PQerrorMessage(c) : nullptr);
  return m.empty() ? fallback : m;
}

}  // namespace dataloader::pg::detail
