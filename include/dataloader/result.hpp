// The outcome of one piece of work (a key's load, an item of a batch): a value, or an
// error code with a readable message. Shared by every layer.
#pragma once

#include "dataloader/error.hpp"

#include <boost/system/system_error.hpp>

#include <string>
#include <utility>
#include <variant>

namespace dataloader {

// An error for one key, or for a whole batch call.
struct failure {
  error_code code;
  std::string message;
};

// Thrown by the awaitable convenience functions (loader::load) when a key fails.
// what() carries the diagnostic message.
class load_error : public boost::system::system_error {
 public:
  load_error(error_code code, const std::string& message)
      : boost::system::system_error(code, message) {}
};

template <class V>
class result {
 public:
  // An error ("no result"): what Asio hands over alongside an exception.
  result() : state_(std::in_place_index<1>, failure{errc::batch_failed, "no result"}) {}
  result(const V& value) : state_(std::in_place_index<0>, value) {}
  result(V&& value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(failure f) : state_(std::in_place_index<1>, std::move(f)) {}

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // The value; throws load_error when this result is an error.
  V& value() & { check(); return std::get<0>(state_); }
  const V& value() const& { check(); return std::get<0>(state_); }
  V&& value() && { check(); return std::get<0>(std::move(state_)); }
  V& operator*() & { return std::get<0>(state_); }
  const V& operator*() const& { return std::get<0>(state_); }
  const V* operator->() const { return &std::get<0>(state_); }

  // Empty error_code when this result holds a value.
  error_code error() const noexcept {
    return has_value() ? error_code{} : std::get<1>(state_).code;
  }
  // The diagnostic message of an error; empty for a value.
  const std::string& message() const noexcept {
    static const std::string none;
    return has_value() ? none : std::get<1>(state_).message;
  }
  const failure& get_failure() const& { return std::get<1>(state_); }
  failure&& get_failure() && { return std::get<1>(std::move(state_)); }

 private:
  void check() const {
    if (!has_value()) {
      const auto& f = std::get<1>(state_);
      throw load_error(f.code, f.message);
    }
  }

  std::variant<V, failure> state_;
};

}  // namespace dataloader
