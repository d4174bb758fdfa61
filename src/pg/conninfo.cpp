#include "dataloader/pg/pool_params.hpp"

#include "libpq_text.hpp"

#include <libpq-fe.h>

namespace dataloader::pg {

bool valid_conninfo(const std::string& conninfo, std::string& message) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
  if (parsed) {
    PQconninfoFree(parsed);
    return true;
  }
  message = error ? detail::libpq_text(error) : "out of memory";
  if (error) PQfreemem(error);
  return false;
}

}  // namespace dataloader::pg
