// What the PostgreSQL layer sends: named statements (prepared once per connection and
// reused by name) with parameters that travel separately from the SQL text.
#pragma once

#include "dataloader/pg/types.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dataloader::pg {

// A statement prepared on each connection at first use, then executed by name.
// The name must be unique per SQL text within a pool.
struct statement {
  std::string name;
  std::string sql;
};

// Parameter values $1, $2, ... encoded through param_traits. An invalid value (for
// example text with a NUL byte) is recorded, and the query carrying these parameters is
// refused with errc::invalid_argument before anything is sent.
class params {
 public:
  params() = default;
  template <class... T>
  explicit params(const T&... values) {
    (add(values), ...);
  }

  template <class T>
  params& add(const T& value) {
    encoded e = param_traits<T>::encode(value);
    if constexpr (std::is_same_v<T, std::vector<std::string>>) batch_keys_ = std::max(batch_keys_, value.size());
    if (!e.problem.empty() && problem_.empty())
      problem_ = "parameter $" + std::to_string(values_.size() + 1) + " " + e.problem;
    values_.push_back(std::move(e.value));
    return *this;
  }

  std::size_t size() const noexcept { return values_.size(); }
  const std::vector<std::optional<std::string>>& values() const noexcept { return values_; }
  // Why these parameters cannot be sent; empty when they can.
  const std::string& problem() const noexcept { return problem_; }
  // The keys of the batch these parameters carry: elements of the longest array (text[])
  // parameter, 1 without one. For diagnostics (slow statements).
  std::size_t batch_keys() const noexcept { return batch_keys_; }

 private:
  std::vector<std::optional<std::string>> values_;
  std::string problem_;
  std::size_t batch_keys_ = 1;
};

struct query {
  const statement* stmt;  // must outlive the operation (statements are usually static)
  params args;
};

}  // namespace dataloader::pg
