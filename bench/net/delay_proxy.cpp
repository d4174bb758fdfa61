// A TCP relay that delays every byte by a fixed time in each direction: PostgreSQL "across
// a network" for the benchmark, on a machine whose kernel has no netem. Bytes keep their
// order; each chunk read is written once its delay has passed.
//   delay_proxy LISTEN_PORT TARGET_PORT ONE_WAY_DELAY_US
// Prints "ready" when it accepts connections; runs until killed.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

struct chunk {
  clock_type::time_point due;
  std::vector<char> bytes;
};

// One direction: a reader queues chunks stamped with their due time, a writer sends each
// when it is due. Closing either socket ends both loops of the pair.
struct direction {
  direction(tcp::socket& from, tcp::socket& to, clock_type::duration delay)
      : from(from), to(to), delay(delay), wake(from.get_executor()) {}
  tcp::socket& from;
  tcp::socket& to;
  clock_type::duration delay;
  asio::steady_timer wake;
  std::deque<chunk> queue;
  bool done = false;

  asio::awaitable<void> read_loop() {
    for (;;) {
      std::vector<char> buf(64 * 1024);
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      buf.resize(n);
      queue.push_back({clock_type::now() + delay, std::move(buf)});
      wake.cancel();
    }
    done = true;
    wake.cancel();
  }

  asio::awaitable<void> write_loop() {
    for (;;) {
      if (queue.empty()) {
        if (done) break;
        wake.expires_at(clock_type::time_point::max());
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      if (clock_type::now() < queue.front().due) {
        wake.expires_at(queue.front().due);
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      auto c = std::move(queue.front());
      queue.pop_front();
      auto [ec, n] = co_await asio::async_write(to, asio::buffer(c.bytes), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
    }
    boost::system::error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);
  }
};

struct pair_of_sockets : std::enable_shared_from_this<pair_of_sockets> {
  pair_of_sockets(tcp::socket client, tcp::socket server, clock_type::duration delay)
      : client(std::move(client)), server(std::move(server)), up(this->client, this->server, delay),
        down(this->server, this->client, delay) {}
  tcp::socket client, server;
  direction up, down;

  void start() {
    auto self = shared_from_this();
    auto ex = client.get_executor();
    for (auto* d : {&up, &down}) {
      asio::co_spawn(ex, d->read_loop(), [self](std::exception_ptr) {});
      asio::co_spawn(ex, d->write_loop(), [self](std::exception_ptr) {});
    }
  }
};

asio::awaitable<void> serve(tcp::acceptor& acceptor, tcp::endpoint target, clock_type::duration delay) {
  for (;;) {
    auto [ec, client] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) continue;
    tcp::socket server(acceptor.get_executor());
    auto [ec2] = co_await server.async_connect(target, asio::as_tuple(asio::use_awaitable));
    if (ec2) continue;
    client.set_option(tcp::no_delay(true));
    server.set_option(tcp::no_delay(true));
    std::make_shared<pair_of_sockets>(std::move(client), std::move(server), delay)->start();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: delay_proxy LISTEN_PORT TARGET_PORT ONE_WAY_DELAY_US\n");
    return 2;
  }
  asio::io_context io(1);
  const auto loopback = asio::ip::make_address("127.0.0.1");
  tcp::acceptor acceptor(io, tcp::endpoint(loopback, static_cast<unsigned short>(std::atoi(argv[1]))));
  const tcp::endpoint target(loopback, static_cast<unsigned short>(std::atoi(argv[2])));
  const auto delay = std::chrono::microseconds(std::atoll(argv[3]));
  asio::co_spawn(io, serve(acceptor, target, delay), asio::detached);
  std::printf("ready\n");
  std::fflush(stdout);
  io.run();
}
