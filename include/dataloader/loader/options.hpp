// How a loader batches and caches.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace dataloader {

class loader_registry;

enum class cache_mode {
  // No values are kept once a batch completes; loads still fold into pending keys and join
  // keys in flight. The right mode for long-lived loaders in front of data that changes.
  off,
  // Every loaded value is kept until cleared: the graphql/dataloader model, for a loader
  // that lives for one request.
  unbounded,
  // At most cache_max_entries values, least recently used evicted first.
  lru,
};

struct loader_options {
  // Name under which the loader reports its counters; requires registry, which must
  // outlive the loader.
  std::string name;
  loader_registry* registry = nullptr;

  // At most this many keys per batch function call; more pending keys are split into
  // several calls that all start in the same dispatch.
  std::size_t max_batch_size = 1000;

  // 0: dispatch at the end of the current tick (when the executor runs the dispatch job
  // posted by the first pending load). Greater: dispatch that long after the first pending
  // key, to gather loads across ticks; a full batch is dispatched at once regardless.
  std::chrono::microseconds batch_window{0};

  // Smart batching: asked on the loader's executor when a batch is ready to go (its tick,
  // or its window, ended) and not full. Returning true means that whatever serves the
  // batches is saturated and this one would only queue behind the others: the batch
  // keeps gathering keys, and the hold calls `go` once, on the loader's executor, when
  // it can take a batch. A batch that fills up (max_batch_size keys) goes at once.
  // Empty: a batch goes when it is ready. (The memory store passes the pool's
  // connection_pool::saturated().)
  std::function<bool(std::function<void()> go)> hold;

  // Off by default: a long-lived loader must not serve stale data; choose unbounded for a
  // per-request loader, or lru with a ttl for a shared read-mostly cache.
  cache_mode cache = cache_mode::off;
  std::size_t cache_max_entries = 10'000;              // lru only
  std::chrono::steady_clock::duration cache_ttl{0};    // 0: cached values never expire
};

}  // namespace dataloader
