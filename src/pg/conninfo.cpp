#include "dataloader/pg/pool_params.hpp"

#include <libpq-fe.h>

namespace dataloader::pg {

bool valid_conninfo(const std::string& conninfo, std::string& message) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
  if (parsed) {
    PQconninfoFree(parsed);
    return true;
  }
  message = error ? error : "out of memory";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (error) PQfreemem(error);
  return false;
}

}  // namespace dataloader::pg
