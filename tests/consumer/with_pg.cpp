// Links dataloader::pg: one statement against the server named on the command line.
#include <dataloader/pg/connection_pool.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>

namespace asio = boost::asio;
namespace pg = dataloader::pg;

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  asio::io_context io;
  pg::pool_params params;
  params.conninfo = argv[1];
  params.size = 1;
  pg::connection_pool pool(io.get_executor(), params);
  pool.start();
  static const pg::statement add{"consumer_add", "SELECT $1::int4 + $2::int4"};
  int status = 1;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    dataloader::diagnostics diag;
    auto [ec, r] = co_await pool.async_query(add, pg::params(40, 2), {}, diag, asio::as_tuple(asio::use_awaitable));
    if (ec) std::fprintf(stderr, "with_pg: %s\n", dataloader::describe(ec, diag).c_str());
    else if (r.get<int>(0, 0) == 42) status = 0;
    std::printf("with_pg: %s\n", status == 0 ? "40 + 2 = 42 from the server" : "wrong answer");
    pool.close();
  }, asio::detached);
  io.run();
  return status;
}
