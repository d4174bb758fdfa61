// The rows a statement returned (text format), decoded through result_traits.
#pragma once

#include "dataloader/pg/types.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

struct pg_result;  // libpq's PGresult

namespace dataloader::pg {

class result {
 public:
  result() = default;
  explicit result(std::shared_ptr<const pg_result> r) : r_(std::move(r)) {}

  std::size_t rows() const noexcept;
  std::size_t columns() const noexcept;
  // Rows inserted, updated or deleted (from the command tag); 0 when not applicable.
  std::uint64_t affected_rows() const noexcept;
  // Column index by name, or -1.
  int column(std::string_view name) const noexcept;

  bool is_null(std::size_t row, std::size_t col) const noexcept;
  // The text of a field; nullopt for SQL NULL.
  field text(std::size_t row, std::size_t col) const noexcept;

  // The decoded field; nullopt for NULL or a value T cannot hold.
  template <class T>
  std::optional<T> get(std::size_t row, std::size_t col) const {
    auto f = text(row, col);
    if (!f) return std::nullopt;
    return result_traits<T>::decode(*f);
  }

  // Row `row` decoded column by column into a tuple; nullopt when a field is NULL or
  // does not decode (use std::optional<U> members via get for nullable columns).
  template <class... T>
  std::optional<std::tuple<T...>> row(std::size_t r) const {
    return row_impl<T...>(r, std::index_sequence_for<T...>{});
  }

 private:
  template <class... T, std::size_t... I>
  std::optional<std::tuple<T...>> row_impl(std::size_t r, std::index_sequence<I...>) const {
    std::tuple<std::optional<T>...> fields{get<T>(r, I)...};
    if (!(std::get<I>(fields).has_value() && ...)) return std::nullopt;
    return std::tuple<T...>{std::move(*std::get<I>(fields))...};
  }

  std::shared_ptr<const pg_result> r_;
};

}  // namespace dataloader::pg
