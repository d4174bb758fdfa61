// Counters and the registry.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace dataloader;
namespace asio = boost::asio;

TEST_CASE("batch sizes land in power-of-two histogram buckets") {
  CHECK(batch_histogram_bucket(1) == 0);
  CHECK(batch_histogram_bucket(2) == 1);
  CHECK(batch_histogram_bucket(3) == 2);
  CHECK(batch_histogram_bucket(4) == 2);
  CHECK(batch_histogram_bucket(5) == 3);
  CHECK(batch_histogram_bucket(1000) == 10);
  CHECK(batch_histogram_bucket(1024) == 10);
  CHECK(batch_histogram_bucket(1025) == 11);
  CHECK(batch_histogram_bucket(std::size_t{1} << 40) == batch_histogram_buckets - 1);
  CHECK(batch_histogram_upper_bound(10) == 1024);
}

TEST_CASE("counts loads, batches, keys, dedup hits, largest batch and histogram") {
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader_options opts;
  opts.max_batch_size = 4;
  loader<int, int> l(io.get_executor(), test::recording_batch{&calls}, opts);
  std::vector<int> keys{1, 2, 3, 4, 5, 6, 1, 2};  // 6 distinct: batches of 4 and 2
  l.async_load_many(keys, [](error_code, std::vector<result<int>>) {});
  io.run();
  const auto s = l.stats();
  CHECK(s.loads == 8);
  CHECK(s.dedup_hits == 2);
  CHECK(s.batches == 2);
  CHECK(s.keys == 6);
  CHECK(s.max_batch == 4);
  CHECK(s.batch_size_histogram[batch_histogram_bucket(4)] == 1);
  CHECK(s.batch_size_histogram[batch_histogram_bucket(2)] == 1);
  CHECK(s.errors == 0);
  CHECK(s.cache_hits == 0);
}

TEST_CASE("the registry adds up loaders under one name and keeps counts of destroyed ones") {
  loader_registry registry;
  std::vector<std::vector<int>> calls;
  asio::io_context io;
  loader_options opts;
  opts.name = "profiles";
  opts.registry = &registry;
  loader<int, int> kept(io.get_executor(), test::recording_batch{&calls}, opts);
  {
    loader<int, int> per_request(io.get_executor(), test::recording_batch{&calls}, opts);
    per_request.async_load(1, [](error_code, int) {});
    kept.async_load(2, [](error_code, int) {});
    kept.async_load(3, [](error_code, int) {});
    io.run();
  }
  io.restart();
  io.run();  // the destroyed loader's shutdown job
  auto snap = registry.snapshot();
  REQUIRE(snap.count("profiles") == 1);
  CHECK(snap["profiles"].loads == 3);
  CHECK(snap["profiles"].batches == 2);
  CHECK(snap["profiles"].max_batch == 2);
}
