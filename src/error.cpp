#include "dataloader/error.hpp"

#include <string>

namespace dataloader {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "dataloader"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_found: return "not found";
      case errc::batch_failed: return "batch function failed";
      case errc::wrong_result_count: return "batch function returned the wrong number of results";
      case errc::batch_threw: return "batch function threw an exception";
      case errc::batch_completed_twice: return "batch function completed twice";
      case errc::batch_abandoned: return "batch function dropped its completion without calling it";
      case errc::invalid_argument: return "invalid argument";
      case errc::pool_timeout: return "timed out waiting for a pooled connection";
      case errc::timeout: return "statement timed out";
      case errc::connection_lost: return "connection to the database lost";
      case errc::server_error: return "database server error";
      case errc::protocol_error: return "database client error";
      case errc::pool_closed: return "connection pool closed";
    }
    return "unknown dataloader error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& dataloader_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace dataloader
