// The route table (SPEC.md HTTP API): one entry per method and path, one handler each.
// Handlers are plain functions from a request to a response: no socket, so each can be
// tested by calling service::handle().
#pragma once

#include "dataloader/http/service.hpp"
#include "dataloader/http/url.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace dataloader::http::detail {

// What a handler sees: the service's parts, the request, its decoded target, and the
// {user_id} segment when its path has one.
struct route_context {
  service& svc;
  const request& req;
  const target& where;
  const std::string* user_id;
};

struct route {
  bhttp::verb method;                     // a GET route answers HEAD too (RFC 9110)
  std::vector<std::string_view> path;     // literal segments, or "{user_id}"
  bool open;                              // served without the API token
  bool needs_schema;                      // answered 503 until the schema is migrated
  asio::awaitable<response> (*handle)(route_context&);
};

const std::vector<route>& routes();

// Whether `segments` fit `path`; sets `user_id` to the {user_id} segment.
bool path_matches(const route& r, const std::vector<std::string>& segments, const std::string*& user_id);

}  // namespace dataloader::http::detail
