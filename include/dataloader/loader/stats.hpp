// Per-loader counters, written from the loader's executor only (single-writer atomics),
// readable from any thread.
#pragma once

#include "dataloader/detail/single_writer_counter.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace dataloader {

// Batch sizes are counted in power-of-two buckets: bucket i holds sizes in
// (2^(i-1), 2^i], bucket 0 holds size 1; the last bucket holds everything larger.
inline constexpr std::size_t batch_histogram_buckets = 21;

constexpr std::size_t batch_histogram_bucket(std::size_t batch_size) noexcept {
  const auto b = static_cast<std::size_t>(std::bit_width(batch_size > 0 ? batch_size - 1 : 0));
  return std::min(b, batch_histogram_buckets - 1);
}
constexpr std::uint64_t batch_histogram_upper_bound(std::size_t bucket) noexcept {
  return std::uint64_t{1} << bucket;
}

// A plain snapshot of a loader's counters.
struct loader_stats {
  std::uint64_t loads = 0;          // load requests (async_load, and each key of load_many)
  std::uint64_t batches = 0;        // batch function calls
  std::uint64_t keys = 0;           // keys sent to the batch function, summed over calls
  std::uint64_t cache_hits = 0;     // loads answered from the cache
  std::uint64_t dedup_hits = 0;     // loads folded into a pending key or joined to one in flight
  std::uint64_t errors = 0;         // keys whose batch result was an error
  std::uint64_t cancelled = 0;      // loads completed with operation_aborted
  std::uint64_t contract_violations = 0;  // wrong result count, throw, double completion, abandonment
  std::uint64_t max_batch = 0;      // largest batch function call
  std::array<std::uint64_t, batch_histogram_buckets> batch_size_histogram{};

  loader_stats& operator+=(const loader_stats& o) noexcept {
    loads += o.loads; batches += o.batches; keys += o.keys; cache_hits += o.cache_hits;
    dedup_hits += o.dedup_hits; errors += o.errors; cancelled += o.cancelled;
    contract_violations += o.contract_violations;
    max_batch = std::max(max_batch, o.max_batch);
    for (std::size_t i = 0; i < batch_histogram_buckets; ++i)
      batch_size_histogram[i] += o.batch_size_histogram[i];
    return *this;
  }
};

namespace detail {

struct loader_counters {
  single_writer_counter loads, batches, keys, cache_hits, dedup_hits, errors, cancelled,
      contract_violations, max_batch;
  std::array<single_writer_counter, batch_histogram_buckets> histogram;

  void record_batch(std::size_t size) noexcept {
    batches.add();
    keys.add(size);
    max_batch.raise_to(size);
    histogram[batch_histogram_bucket(size)].add();
  }

  loader_stats snapshot() const noexcept {
    loader_stats s;
    s.loads = loads.get(); s.batches = batches.get(); s.keys = keys.get();
    s.cache_hits = cache_hits.get(); s.dedup_hits = dedup_hits.get(); s.errors = errors.get();
    s.cancelled = cancelled.get(); s.contract_violations = contract_violations.get();
    s.max_batch = max_batch.get();
    for (std::size_t i = 0; i < batch_histogram_buckets; ++i)
      s.batch_size_histogram[i] = histogram[i].get();
    return s;
  }
};

}  // namespace detail
}  // namespace dataloader
