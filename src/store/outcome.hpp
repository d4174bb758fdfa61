// What a statement or a statement group sent by the store ended with.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/pg/result.hpp"
#include "dataloader/result.hpp"

#include <vector>

namespace dataloader::store::detail {

struct query_outcome {
  error_code ec;
  pg::result result;
  diagnostics diag;
};
struct group_outcome {
  error_code ec;
  std::vector<pg::result> results;
  diagnostics diag;
};

// The failure a caller sees: the code (a SQLSTATE for server errors) and readable text.
inline failure failure_of(const error_code& ec, const diagnostics& d) { return {ec, describe(ec, d)}; }

template <class V>
std::vector<result<V>> fail_all(std::size_t n, const failure& f) {
  return std::vector<result<V>>(n, result<V>(f));
}

}  // namespace dataloader::store::detail
