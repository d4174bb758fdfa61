// A loader on a strand, used by coroutines on an io_context run by several threads.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <set>

using namespace dataloader;
namespace asio = boost::asio;

TEST_CASE("a loader on a strand serves coroutines on four threads") {
  asio::thread_pool pool(4);
  std::atomic<int> batch_calls{0};
  std::atomic<int> concurrent{0}, max_concurrent{0};
  loader_options opts;
  opts.max_batch_size = 64;
  opts.cache = cache_mode::lru;
  opts.cache_max_entries = 16;
  loader<int, int> l(asio::make_strand(pool), [&](std::span<const int> keys) {
    const int now = ++concurrent;
    int seen = max_concurrent.load();
    while (now > seen && !max_concurrent.compare_exchange_weak(seen, now)) {}
    ++batch_calls;
    std::vector<int> out;
    for (int k : keys) out.push_back(k * 3);
    --concurrent;
    return out;
  }, opts);

  constexpr int coroutines = 200, loads_each = 200;
  std::atomic<int> wrong{0}, done{0}, aborted{0};
  for (int c = 0; c < coroutines; ++c)
    asio::co_spawn(pool, [&, c]() -> asio::awaitable<void> {
      for (int i = 0; i < loads_each; ++i) {
        const int key = (c * 7 + i) % 97;
        if (i % 50 == 0) l.clear(key);
        if (i % 30 == 0) {
          std::vector<int> keys{key, key + 1, key};
          auto r = co_await l.load_many(keys);
          if (r[0].value() != key * 3 || r[1].value() != (key + 1) * 3) ++wrong;
        } else if (co_await l.load(key) != key * 3) {
          ++wrong;
        }
      }
      ++done;
    }, [&](std::exception_ptr e) { if (e) ++aborted; });
  pool.join();
  CHECK(done == coroutines);
  CHECK(aborted == 0);
  CHECK(wrong == 0);
  CHECK(max_concurrent == 1);  // batch functions run on the strand
  const auto s = l.stats();
  CHECK(s.loads == coroutines * loads_each + (coroutines * (loads_each / 30 + 1)) * 2);
  CHECK(s.batches == static_cast<std::uint64_t>(batch_calls.load()));
  CHECK(s.max_batch <= 64);
}
