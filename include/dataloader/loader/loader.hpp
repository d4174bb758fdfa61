// dataloader::loader<K, V>: a coroutine DataLoader on Boost.Asio.
//
// Every load issued while the loader's executor is busy with one tick is coalesced into
// one call of the batch function (at most max_batch_size keys per call; more are split
// into calls that all start together). A key requested by several waiters is sent once;
// a key already in flight is joined unless it was cleared after its batch was sent.
//
// The batch function returns one result per key in key order (or a map; see
// batch_function.hpp). Whatever it does, no waiter hangs: a wrong result count, an
// exception, or a dropped completion becomes an error on every waiter of that call.
//
// Threads: the loader's state lives on its executor, which must be serialized: an
// io_context run by one thread, or a strand. Every member function may be called from
// any thread: it runs inline when already on that executor, otherwise it is queued there
// in call order. Completions are delivered on the handler's associated executor.
// Per-operation cancellation must be emitted from the handler's executor, as Asio
// requires of all its I/O objects.
//
// Lifetime: destroying the loader completes its waiters with operation_aborted; batches
// already sent run to completion in the background.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/loader/batch_completion.hpp"
#include "dataloader/loader/detail/batch_function.hpp"
#include "dataloader/loader/detail/loader_core.hpp"
#include "dataloader/loader/detail/waiter.hpp"
#include "dataloader/loader/options.hpp"
#include "dataloader/result.hpp"
#include "dataloader/loader/stats.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace dataloader {

namespace asio = boost::asio;

// V must be copyable (several waiters and the cache share one value) and default
// constructible (the value argument accompanying an error).
template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class loader {
  using core_type = detail::loader_core<K, V, Hash, KeyEqual>;

 public:
  using key_type = K;
  using value_type = V;
  using executor_type = asio::any_io_executor;

  template <class BatchFunction>
  loader(executor_type ex, BatchFunction fn, loader_options opts = {})
      : core_(std::make_shared<core_type>(
            ex, detail::adapt_batch_function<K, V>(std::move(fn), ex), std::move(opts))) {}

  loader(const loader&) = delete;
  loader& operator=(const loader&) = delete;
  loader(loader&&) noexcept = default;
  loader& operator=(loader&&) = delete;

  ~loader() {
    if (!core_) return;
    core_->unregister();
    core_->run([core = core_] { core->shutdown(); });
  }

  executor_type get_executor() const noexcept { return core_->executor(); }
  const loader_options& options() const noexcept { return core_->options(); }

  // Completes with void(error_code, V). Errors: errc::not_found (map-form batch function
  // without the key), the batch function's own per-key or whole-call error, contract
  // violations (errc::wrong_result_count, batch_threw, batch_abandoned), or
  // asio::error::operation_aborted when cancelled or when the loader is destroyed.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_load(K key, CompletionToken&& token = {}) {
    return asio::async_initiate<CompletionToken, void(error_code, V)>(
        initiate_load<detail::completion_style::error_code>{core_.get()}, token,
        std::move(key), static_cast<diagnostics*>(nullptr));
  }

  // As above; `diag` receives the error's readable message before completion.
  // It must stay alive until the operation completes.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_load(K key, diagnostics& diag, CompletionToken&& token = {}) {
    return asio::async_initiate<CompletionToken, void(error_code, V)>(
        initiate_load<detail::completion_style::error_code>{core_.get()}, token,
        std::move(key), &diag);
  }

  // `co_await loader.load(key)`: the value, or throws load_error whose what() names the
  // problem (and whose code() is the error_code above).
  //
  // A cache hit on the loader's own thread does not suspend for a batch: it is an
  // awaitable that has its value already, so the caller resumes within the same tick
  // without a handler, a waiter or a trip through the executor's queue. (An asynchronous
  // operation must not call its handler from its initiation; this is no operation, just
  // a coroutine that returns at once. async_load keeps the rule: its hits are posted.)
  asio::awaitable<V> load(K key) {
    if (const V* v = core_->cached_here(key)) return ready(*v);
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, V)>(
        initiate_load<detail::completion_style::exception>{core_.get()}, asio::use_awaitable,
        std::move(key), static_cast<diagnostics*>(nullptr));
  }

  // Completes with void(error_code, std::vector<result<V>>): one result per key, in key
  // order, each a value or that key's own error. The error_code is empty unless keys were
  // aborted (cancellation, or the loader destroyed): then operation_aborted, and those
  // keys' results say so while the others keep their values. Duplicate keys in `keys`
  // are folded into one key of the batch. Cancellation aborts every key still waiting.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_load_many(std::vector<K> keys, CompletionToken&& token = {}) {
    return asio::async_initiate<CompletionToken, void(error_code, std::vector<result<V>>)>(
        initiate_load_many{core_.get()}, token, std::move(keys));
  }

  // `co_await loader.load_many(keys)`: the per-key results; throws boost::system::system_error
  // when keys were aborted.
  asio::awaitable<std::vector<result<V>>> load_many(std::vector<K> keys) {
    return async_load_many(std::move(keys), asio::use_awaitable);
  }

  // Caches `value` for `key` unless a value is already cached (no effect with cache off).
  // To replace a cached value: clear(key), then prime(key, value).
  void prime(K key, V value) {
    core_->run([core = core_.get(), k = std::move(key), v = std::move(value)] {
      core->prime(k, v);
    });
  }

  // Forgets the cached value of `key`, and detaches a batch in flight for it: a load that
  // starts after clear() returns never receives data sent for before the clear.
  void clear(K key) {
    core_->run([core = core_.get(), k = std::move(key)] { core->clear(k); });
  }
  void clear_all() {
    core_->run([core = core_.get()] { core->clear_all(); });
  }

  loader_stats stats() const noexcept { return core_->counters()->snapshot(); }

 private:
  static asio::awaitable<V> ready(V value) { co_return value; }

  template <detail::completion_style Style>
  struct initiate_load {
    core_type* core;
    template <class Handler>
    void operator()(Handler&& handler, K key, diagnostics* diag) const {
      using waiter_type = detail::handler_waiter<V, std::decay_t<Handler>, Style>;
      auto* raw = waiter_type::create(std::move(handler), diag, *core);
      if (core->running_here()) return core->load(std::move(key), raw);
      detail::waiter_ptr<V> w(raw);
      core->run([core = core, key = std::move(key), w = std::move(w)]() mutable {
        core->load(std::move(key), w.release());
      });
    }
  };

  struct initiate_load_many {
    core_type* core;
    template <class Handler>
    void operator()(Handler&& handler, std::vector<K> keys) const {
      using op_type = detail::many_op<V, std::decay_t<Handler>>;
      std::unique_ptr<op_type, typename op_type::discard> op(
          op_type::create(std::move(handler), keys.size(), *core));
      core->run([core = core, keys = std::move(keys), op = std::move(op)]() mutable {
        auto* registered = op.release();
        if (keys.empty()) return registered->complete_empty(core->executor());
        for (std::size_t i = 0; i < keys.size(); ++i)
          core->load(std::move(keys[i]), registered->waiter_at(i));
      });
    }
  };

  std::shared_ptr<core_type> core_;
};

}  // namespace dataloader
