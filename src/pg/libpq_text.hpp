// libpq's messages end in a newline (sometimes followed by spaces or more lines' ends):
// the text without them, ready to go into one log line or error body.
#pragma once

#include <string>

namespace dataloader::pg::detail {

inline std::string libpq_text(const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

}  // namespace dataloader::pg::detail
