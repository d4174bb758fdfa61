#include "dataloader/pg/result.hpp"

#include <libpq-fe.h>

#include <cstdlib>

namespace dataloader::pg {

std::size_t result::rows() const noexcept { return r_ ? static_cast<std::size_t>(PQntuples(r_.get())) : 0; }
std::size_t result::columns() const noexcept { return r_ ? static_cast<std::size_t>(PQnfields(r_.get())) : 0; }

std::uint64_t result::affected_rows() const noexcept {
  if (!r_) return 0;
  const char* tuples = PQcmdTuples(const_cast<PGresult*>(r_.get()));
  return (tuples && *tuples) ? std::strtoull(tuples, nullptr, 10) : 0;
}

int result::column(std::string_view name) const noexcept {
  if (!r_) return -1;
  for (int c = 0, n = PQnfields(r_.get()); c < n; ++c)
    if (name == PQfname(r_.get(), c)) return c;
  return -1;
}

bool result::is_null(std::size_t row, std::size_t col) const noexcept {
  return !r_ || PQgetisnull(r_.get(), static_cast<int>(row), static_cast<int>(col));
}

field result::text(std::size_t row, std::size_t col) const noexcept {
  if (!r_ || row >= rows() || col >= columns()) return std::nullopt;
  const int r = static_cast<int>(row), c = static_cast<int>(col);
  if (PQgetisnull(r_.get(), r, c)) return std::nullopt;
  return std::string_view(PQgetvalue(r_.get(), r, c), static_cast<std::size_t>(PQgetlength(r_.get(), r, c)));
}

}  // namespace dataloader::pg
