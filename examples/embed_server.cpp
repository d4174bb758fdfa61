// Embedding loaders in an Asio server of your own.
//
// A tiny line protocol on TCP: a client sends a user id per line, the server answers with
// the user's profile. Each connection's handler simply awaits `names.load(id)`; the
// loader turns all the lookups that arrive together, from every connection, into one
// `= ANY($1)` statement. To stay self-contained the program also runs the clients: 200
// connections that ask at once. It prints how many statements that took, and exits 0 when
// every answer was right and lookups shared statements.
//
//   embed_server DATABASE_URL
#include <dataloader/dataloader.hpp>
#include <dataloader/pg/connection_pool.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <istream>
#include <unordered_map>

namespace asio = boost::asio;
namespace pg = dataloader::pg;
using asio::ip::tcp;

const pg::statement create_table{"example_create",
    "CREATE TABLE IF NOT EXISTS example_profiles (user_id text PRIMARY KEY, profile text NOT NULL)"};
const pg::statement fill{"example_fill",
    "INSERT INTO example_profiles SELECT 'user' || g, 'profile of user ' || g FROM generate_series(1, 200) g "
    "ON CONFLICT (user_id) DO NOTHING"};
const pg::statement by_ids{"example_by_ids",
    "SELECT user_id, profile FROM example_profiles WHERE user_id = ANY($1::text[])"};

using profile_loader = dataloader::loader<std::string, std::string>;

// Your batch function: one statement for all the ids of a tick. Missing ids resolve as
// dataloader::errc::not_found (map form).
auto batch_function(pg::connection_pool& pool, int& statements) {
  return [&pool, &statements](std::span<const std::string> ids)
             -> asio::awaitable<std::unordered_map<std::string, std::string>> {
    ++statements;
    dataloader::diagnostics diag;
    auto [ec, rows] = co_await pool.async_query(by_ids, pg::params(std::vector<std::string>(ids.begin(), ids.end())),
                                                {}, diag, asio::as_tuple(asio::use_awaitable));
    if (ec) throw std::runtime_error(diag.message());  // every waiter of this batch gets the error
    std::unordered_map<std::string, std::string> found;
    for (std::size_t i = 0; i < rows.rows(); ++i) found.emplace(*rows.get<std::string>(i, 0), *rows.get<std::string>(i, 1));
    co_return found;
  };
}

// The server side of one connection: read an id, answer its profile, repeat.
asio::awaitable<void> session(tcp::socket socket, profile_loader& names) {
  asio::streambuf buffer;
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(socket, buffer, '\n', asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    std::string id;
    std::getline(std::istream(&buffer), id);
    dataloader::diagnostics diag;
    auto [lec, profile] = co_await names.async_load(id, diag, asio::as_tuple(asio::use_awaitable));
    std::string reply = lec ? "error: " + lec.message() + "\n" : profile + "\n";
    co_await asio::async_write(socket, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, profile_loader& names) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), names), asio::detached);
  }
}

// One client: connects, waits until every client is connected, asks, checks the answer.
asio::awaitable<bool> client(tcp::endpoint server, int user, int& connected, int clients, asio::steady_timer& all_connected) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(server, asio::use_awaitable);
  if (++connected == clients) all_connected.cancel();
  else co_await all_connected.async_wait(asio::as_tuple(asio::use_awaitable));
  const std::string ask = "user" + std::to_string(user) + "\n";
  co_await asio::async_write(socket, asio::buffer(ask), asio::use_awaitable);
  asio::streambuf buffer;
  co_await asio::async_read_until(socket, buffer, '\n', asio::use_awaitable);
  std::string answer;
  std::getline(std::istream(&buffer), answer);
  co_return answer == "profile of user " + std::to_string(user);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: embed_server DATABASE_URL\n");
    return 2;
  }
  asio::io_context io(1);
  pg::pool_params params;
  params.conninfo = argv[1];
  pg::connection_pool pool(io.get_executor(), params);
  pool.start();
  int statements = 0, right = 0, done = 0, connected = 0;
  constexpr int clients = 200;
  // Lookups that arrive within 500 us of the first one share its batch, even when they
  // come from different reactor wake-ups.
  dataloader::loader_options options;
  options.batch_window = std::chrono::microseconds(500);
  profile_loader names(io.get_executor(), batch_function(pool, statements), options);
  asio::steady_timer all_connected(io, std::chrono::steady_clock::time_point::max());
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));

  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    dataloader::diagnostics diag;
    co_await pool.async_query(create_table, {}, {}, diag, asio::use_awaitable);
    co_await pool.async_query(fill, {}, {}, diag, asio::use_awaitable);
    asio::co_spawn(io, accept_loop(acceptor, names), asio::detached);
    for (int u = 1; u <= clients; ++u)
      asio::co_spawn(io, client(acceptor.local_endpoint(), u, connected, clients, all_connected), [&](std::exception_ptr e, bool ok) {
        right += (!e && ok) ? 1 : 0;
        if (++done == clients) {  // everyone answered: stop serving
          acceptor.close();
          pool.close();
          io.stop();
        }
      });
  }, [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  std::printf("%d of %d clients got the right profile; %d statement(s) for %d lookups\n", right, clients, statements, clients);
  return right == clients && statements < clients ? 0 : 1;
}
