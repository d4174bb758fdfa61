// seed-demo: users user1..userN, each with a profile, an onboarding state and M memories
// over the demo categories, with distinct updated_at times. Deterministic, so a second
// run upserts the same rows.
#pragma once

#include "dataloader/result.hpp"
#include "dataloader/pg/connection_pool.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <functional>

namespace dataloader::cli {

// Calls progress(users_done) after each chunk.
boost::asio::awaitable<result<std::size_t>> seed_demo(pg::connection_pool& pool, std::size_t users,
                                                      std::size_t memories_per_user,
                                                      std::function<void(std::size_t)> progress);

}  // namespace dataloader::cli
