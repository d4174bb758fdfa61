// Loader core speed: cache off, trivial synchronous batch function.
//   loader_bench [google-benchmark flags]          ns per load
//   loader_bench --fixed COROUTINES LOADS_EACH     one fixed run, for valgrind: instructions
//                                                  and allocations per load come from two
//                                                  such runs of different length (bench/loader/measure.py)
//   loader_bench --fixed-floor COROUTINES LOADS_EACH  the same for the Asio floor below
#include "dataloader/dataloader.hpp"

#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace asio = boost::asio;
using key_t_ = std::int64_t;

namespace {

auto identity_batch() {
  return [](std::span<const key_t_> keys) { return std::vector<key_t_>(keys.begin(), keys.end()); };
}

// `coroutines` coroutines each await `loads_each` loads of distinct keys.
void run_distinct(int coroutines, int loads_each) {
  asio::io_context io(1);
  dataloader::loader<key_t_, key_t_> l(io.get_executor(), identity_batch());
  for (int c = 0; c < coroutines; ++c)
    asio::co_spawn(io, [&l, c, loads_each]() -> asio::awaitable<void> {
      const key_t_ base = key_t_{c} * loads_each;
      for (int i = 0; i < loads_each; ++i) {
        const key_t_ v = co_await l.load(base + i);
        benchmark::DoNotOptimize(v);
      }
    }, asio::detached);
  io.run();
}

void BM_load_distinct(benchmark::State& state) {
  const int coroutines = static_cast<int>(state.range(0));
  const int loads_each = 200'000 / coroutines;
  for (auto _ : state) run_distinct(coroutines, loads_each);
  const double loads = static_cast<double>(coroutines) * loads_each;
  state.counters["ns_per_load"] = benchmark::Counter(
      loads, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_load_distinct)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_load_many_100(benchmark::State& state) {
  constexpr int rounds = 2'000;
  for (auto _ : state) {
    asio::io_context io(1);
    dataloader::loader<key_t_, key_t_> l(io.get_executor(), identity_batch());
    asio::co_spawn(io, [&l]() -> asio::awaitable<void> {
      std::vector<key_t_> keys(100);
      for (int r = 0; r < rounds; ++r) {
        for (int i = 0; i < 100; ++i) keys[i] = key_t_{r} * 100 + i;
        auto results = co_await l.load_many(keys);
        benchmark::DoNotOptimize(results.data());
      }
    }, asio::detached);
    io.run();
  }
  const double loads = rounds * 100.0;
  state.counters["ns_per_load"] = benchmark::Counter(
      loads, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_load_many_100)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cache_hit(benchmark::State& state) {
  constexpr int loads = 200'000;
  for (auto _ : state) {
    asio::io_context io(1);
    dataloader::loader_options opts;
    opts.cache = dataloader::cache_mode::unbounded;
    dataloader::loader<key_t_, key_t_> l(io.get_executor(), identity_batch(), opts);
    l.prime(7, 7);
    asio::co_spawn(io, [&l]() -> asio::awaitable<void> {
      for (int i = 0; i < loads; ++i) benchmark::DoNotOptimize(co_await l.load(7));
    }, asio::detached);
    io.run();
  }
  state.counters["ns_per_load"] = benchmark::Counter(
      loads, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_cache_hit)->Unit(benchmark::kMillisecond)->UseRealTime();

// The floor under any loader built on asio::awaitable: the cheapest possible
// use_awaitable operation, whose handlers a posted job resumes in batches, as a loader's
// dispatch does, with no keys, maps or results. (Names an asio::detail type: bench only.)
struct floor_queue {
  using handler = asio::detail::awaitable_handler<asio::any_io_executor, std::exception_ptr, key_t_>;
  asio::io_context* io = nullptr;
  std::vector<handler> handlers;
  std::vector<key_t_> keys;
  bool posted = false;

  asio::awaitable<key_t_> op(key_t_ key) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, key_t_)>(
        [this](handler h, key_t_ k) {
          handlers.push_back(std::move(h));
          keys.push_back(k);
          if (!posted) {
            posted = true;
            asio::post(*io, [this] { resume_all(); });
          }
        },
        asio::use_awaitable, key);
  }
  void resume_all() {
    posted = false;
    auto hs = std::move(handlers);
    auto ks = std::move(keys);
    handlers.clear();
    keys.clear();
    for (std::size_t i = 0; i < hs.size(); ++i) std::move(hs[i])(std::exception_ptr{}, ks[i]);
  }
};

void run_floor(int coroutines, int loads_each) {
  asio::io_context io(1);
  floor_queue q;
  q.io = &io;
  for (int c = 0; c < coroutines; ++c)
    asio::co_spawn(io, [&q, c, loads_each]() -> asio::awaitable<void> {
      for (int i = 0; i < loads_each; ++i) benchmark::DoNotOptimize(co_await q.op(key_t_{c} * loads_each + i));
    }, asio::detached);
  io.run();
}

void BM_asio_awaitable_floor(benchmark::State& state) {
  const int coroutines = static_cast<int>(state.range(0));
  const int loads_each = 200'000 / coroutines;
  for (auto _ : state) run_floor(coroutines, loads_each);
  state.counters["ns_per_load"] = benchmark::Counter(
      static_cast<double>(coroutines) * loads_each,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_asio_awaitable_floor)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--fixed") == 0) {
    run_distinct(std::atoi(argv[2]), std::atoi(argv[3]));
    return 0;
  }
  if (argc == 4 && std::strcmp(argv[1], "--fixed-floor") == 0) {
    run_floor(std::atoi(argv[2]), std::atoi(argv[3]));
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
