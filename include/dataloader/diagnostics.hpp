// Readable detail that accompanies an error_code: what exactly went wrong, and for
// database errors the server's SQLSTATE. Written by an operation before it completes.
#pragma once

#include "dataloader/error.hpp"

#include <string>
#include <utility>

namespace dataloader {

class diagnostics {
 public:
  diagnostics() = default;
  explicit diagnostics(std::string message, std::string sqlstate = {})
      : message_(std::move(message)), sqlstate_(std::move(sqlstate)) {}

  // Human-readable description; empty when the error_code says everything.
  const std::string& message() const noexcept { return message_; }
  // Five-character SQLSTATE for errors reported by PostgreSQL, else empty.
  const std::string& sqlstate() const noexcept { return sqlstate_; }

  void assign(std::string message, std::string sqlstate = {}) {
    message_ = std::move(message);
    sqlstate_ = std::move(sqlstate);
  }
  void clear() noexcept {
    message_.clear();
    sqlstate_.clear();
  }

  friend bool operator==(const diagnostics&, const diagnostics&) = default;

 private:
  std::string message_;
  std::string sqlstate_;
};

// The readable text of an error: the diagnostic message (else the code's own), with the
// server's SQLSTATE when there is one.
inline std::string describe(const error_code& ec, const diagnostics& d) {
  std::string text = d.message().empty() ? ec.message() : d.message();
  if (!d.sqlstate().empty()) text += " (SQLSTATE " + d.sqlstate() + ")";
  return text;
}

}  // namespace dataloader
