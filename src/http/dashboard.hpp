// GET /dashboard: the operator's page (src/http/dashboard/dashboard.html, compiled in).
#pragma once

#include "dataloader/http/service.hpp"

namespace dataloader::http::detail {

// The page, telling its script whether to ask for the API token. It holds no figures
// (it reads /stats, under the token), so it is served without one.
response dashboard_response(bool needs_token, unsigned version);

}  // namespace dataloader::http::detail
