// Test support for everything that talks to PostgreSQL: the server the CTest fixture
// started (tests/pg/fixture.sh), and a way to run coroutines against a pool.
#pragma once

#include "../support/coroutines.hpp"

#include "dataloader/pg/connection_pool.hpp"
#include "dataloader/pg/sqlstate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace test {

namespace asio = boost::asio;
namespace pg = dataloader::pg;

struct server {
  std::string url;
  std::string dir;  // empty when the tests use an external server (TEST_DATABASE_URL)

  static const server& get() {
    static const server s = [] {
      server out;
      const char* env = std::getenv("DATALOADER_TEST_PG_ENV");
      if (!env) throw std::runtime_error("DATALOADER_TEST_PG_ENV is not set: run the tests through ctest");
      std::ifstream in(env);
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("URL=", 0) == 0) out.url = line.substr(4);
        if (line.rfind("DIR=", 0) == 0) out.dir = line.substr(4);
      }
      if (out.url.empty()) throw std::runtime_error(std::string("no URL in ") + env);
      return out;
    }();
    return s;
  }

  bool can_restart() const { return !dir.empty(); }
  // Runs scripts/pg-server.sh CMD on the fixture's server (blocking: call off the loop).
  void control(const std::string& cmd) const {
    const std::string line = std::string(DATALOADER_SOURCE_DIR) + "/scripts/pg-server.sh " + cmd + " " + dir;
    if (std::system(line.c_str()) != 0) throw std::runtime_error("failed: " + line);
  }
};

inline pg::pool_params params(std::size_t size = 2) {
  pg::pool_params p;
  p.conninfo = server::get().url;
  p.size = size;
  return p;
}

// One statement through the pool, its outcome as a tuple (error, result, diagnostics).
struct simple {
  pg::connection_pool& pool;
  asio::awaitable<std::tuple<dataloader::error_code, pg::result, dataloader::diagnostics>>
  query(const pg::statement& st, pg::params args = {}, pg::query_options o = {}) {
    dataloader::diagnostics diag;
    auto [ec, r] = co_await pool.async_query(st, std::move(args), o, diag,
                                             asio::as_tuple(asio::use_awaitable));
    co_return std::tuple{ec, std::move(r), diag};
  }
};

}  // namespace test
