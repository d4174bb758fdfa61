#include "dataloader/pg/sqlstate.hpp"

namespace dataloader::pg {
namespace {

std::string decode(int v) {
  std::string code(5, '0');
  for (int i = 4; i >= 0; --i, v /= 36) {
    const int d = v % 36;
    code[static_cast<std::size_t>(i)] = static_cast<char>(d < 10 ? '0' + d : 'A' + d - 10);
  }
  return code;
}

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "postgresql"; }
  std::string message(int ev) const override {
    std::string text = "PostgreSQL error SQLSTATE " + decode(ev);
    switch (static_cast<sqlstate>(ev)) {
      case sqlstate::unique_violation: return text + " (unique_violation)";
      case sqlstate::foreign_key_violation: return text + " (foreign_key_violation)";
      case sqlstate::check_violation: return text + " (check_violation)";
      case sqlstate::serialization_failure: return text + " (serialization_failure)";
      case sqlstate::deadlock_detected: return text + " (deadlock_detected)";
      case sqlstate::query_canceled: return text + " (query_canceled)";
      case sqlstate::admin_shutdown: return text + " (admin_shutdown)";
      case sqlstate::crash_shutdown: return text + " (crash_shutdown)";
      case sqlstate::cannot_connect_now: return text + " (cannot_connect_now)";
      case sqlstate::too_many_connections: return text + " (too_many_connections)";
      case sqlstate::read_only_sql_transaction: return text + " (read_only_sql_transaction)";
    }
    return text;
  }
};

}  // namespace

const boost::system::error_category& sqlstate_category() noexcept {
  static const category instance;
  return instance;
}

error_code sqlstate_error(std::string_view code) noexcept {
  const int v = encode_sqlstate(code);
  if (v == 0) return errc::protocol_error;  // "00000" is success, never an error
  return {v, sqlstate_category()};
}

bool is_server_error(const error_code& ec) noexcept { return ec.category() == sqlstate_category(); }

std::string sqlstate_of(const error_code& ec) { return is_server_error(ec) ? decode(ec.value()) : std::string(); }

bool is_transient(const error_code& ec) noexcept {
  if (!is_server_error(ec)) return false;
  const std::string code = decode(ec.value());
  return code.starts_with("40") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300" ||
         code == "57014";
}

}  // namespace dataloader::pg
