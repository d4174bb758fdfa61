// Test support for the loader: fake batch functions that count what they are asked.
#pragma once

#include "../support/coroutines.hpp"

#include "dataloader/dataloader.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <exception>
#include <thread>
#include <span>
#include <stdexcept>
#include <vector>

namespace test {

namespace asio = boost::asio;

// Records every batch call; answers key * 10.
struct recording_batch {
  std::vector<std::vector<int>>* calls;
  std::vector<int> operator()(std::span<const int> keys) const {
    calls->emplace_back(keys.begin(), keys.end());
    std::vector<int> out;
    for (int k : keys) out.push_back(k * 10);
    return out;
  }
};

// A batch function that holds its completions until the test releases them, so that
// batches can be observed "in flight".
struct held_batches {
  struct call {
    std::vector<int> keys;
    dataloader::batch_completion<int> done;
  };
  std::vector<call> calls;

  auto function() {
    return [this](std::span<const int> keys, dataloader::batch_completion<int> done) {
      calls.push_back({{keys.begin(), keys.end()}, std::move(done)});
    };
  }
  // Completes call i with key * multiplier for each key.
  void answer(std::size_t i, int multiplier = 10) {
    std::vector<dataloader::result<int>> out;
    for (int k : calls.at(i).keys) out.emplace_back(k * multiplier);
    calls.at(i).done(std::move(out));
  }
};

// Runs what is ready now. An io_context that ran out of work stops; restart it so that the
// test can keep stepping while batches are held "in flight" (which hold no work).
inline void step(asio::io_context& io) {
  io.restart();
  io.poll();
}
inline void finish(asio::io_context& io) {
  io.restart();
  io.run();
}

}  // namespace test
