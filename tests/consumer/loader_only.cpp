// Links dataloader::loader only: ten loads in one tick are one batch call.
#include <dataloader/dataloader.hpp>
#include <dataloader/version.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace asio = boost::asio;

int main() {
  asio::io_context io;
  int calls = 0;
  dataloader::loader<int, std::string> names(io.get_executor(), [&](std::span<const int> ids) {
    ++calls;
    std::vector<std::string> out;
    for (int id : ids) out.push_back("name " + std::to_string(id));
    return out;
  });
  int right = 0;
  for (int i = 0; i < 10; ++i)
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      if (co_await names.load(i) == "name " + std::to_string(i)) ++right;
    }, asio::detached);
  io.run();
  std::printf("asio-dataloader %s: %d of 10 loads right in %d batch call(s)\n", DATALOADER_VERSION, right, calls);
  return right == 10 && calls == 1 ? 0 : 1;
}
