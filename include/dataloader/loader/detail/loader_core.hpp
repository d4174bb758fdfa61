// The loader's state machine. Everything here runs on the loader's executor, which must be
// serialized (an io_context run by one thread, or a strand); the public loader hops onto it.
//
// Life of a key:
//   pending    in index_ and pending_; new loads of the key fold into it.
//   dispatched in index_ and in a batch; new loads join it (in-flight join).
//   detached   cleared while dispatched: out of index_, so later loads start a fresh batch
//              that is sent after the clear; its result is delivered to its own waiters
//              but never cached.
// An entry returns to the free list when its batch completes. A pending entry whose
// waiters were all cancelled is dropped at dispatch instead of being sent.
#pragma once

#include "dataloader/loader/batch_completion.hpp"
#include "dataloader/loader/detail/executor_probe.hpp"
#include "dataloader/loader/detail/flat_index.hpp"
#include "dataloader/loader/detail/value_cache.hpp"
#include "dataloader/loader/detail/waiter.hpp"
#include "dataloader/loader/options.hpp"
#include "dataloader/loader/registry.hpp"
#include "dataloader/loader/stats.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace dataloader::detail {

template <class K, class V, class Hash, class KeyEqual>
class loader_core final : public cancel_target<V>,
                          public std::enable_shared_from_this<loader_core<K, V, Hash, KeyEqual>> {
 public:
  using executor_type = asio::any_io_executor;
  using batch_function = std::function<void(std::span<const K>, batch_completion<V>)>;

  loader_core(executor_type ex, batch_function fn, loader_options opts)
      : ex_(std::move(ex)),
        fn_(std::move(fn)),
        opts_(std::move(opts)),
        cache_(opts_.cache, opts_.cache_max_entries, opts_.cache_ttl) {
    if (opts_.batch_window.count() > 0) window_timer_.emplace(ex_);
    if (opts_.max_batch_size == 0) opts_.max_batch_size = 1;
    if (opts_.registry != nullptr) registration_ = opts_.registry->add(opts_.name, counters_);
  }

  ~loader_core() {
    // Reached only when no job, timer or batch refers to the core any more, i.e. the
    // executor was destroyed with work outstanding: free handlers without invoking them.
    for (auto& e : storage_)
      while (waiter<V>* w = e->head) {
        unlink(*e, w);
        w->destroy();
      }
  }

  const executor_type& executor() const noexcept override { return ex_; }
  std::weak_ptr<cancel_target<V>> weak_target() override { return this->weak_from_this(); }
  const loader_options& options() const noexcept { return opts_; }
  const std::shared_ptr<loader_counters>& counters() const noexcept { return counters_; }

  // Called by the public loader as it is destroyed, on its thread: the registry is only
  // required to outlive the loader object, not batches that finish after it.
  void unregister() noexcept { registration_.reset(); }

  bool running_here() const noexcept override { return probe_.running_here(); }

  // Runs `f` on the loader's executor: inline when already there, else queued in order.
  template <class F>
  void run(F&& f) {
    if (probe_.running_here()) f();
    else asio::dispatch(ex_, std::forward<F>(f));
  }

  void load(K&& key, waiter<V>* w) {
    counters_->loads.add();
    w->registered = true;
    if (w->cancel_requested) {  // cancelled between initiation and arrival here
      counters_->cancelled.add();
      w->complete(failure{asio::error::operation_aborted, "load cancelled"}, ex_, true);
      return;
    }
    if (shut_down_) {
      counters_->cancelled.add();
      w->complete(failure{asio::error::operation_aborted, "loader destroyed"}, ex_, true);
      return;
    }
    if (cache_.enabled()) {
      if (const V* v = cache_.find(key)) {
        counters_->cache_hits.add();
        w->complete(result<V>(*v), ex_, true);
        return;
      }
    }
    auto [slot, inserted] = index_.find_or_insert(key);
    if (!inserted) {
      counters_->dedup_hits.add();
      link(**slot, w);
      return;
    }
    entry& e = acquire_entry(std::move(key));
    *slot = &e;
    pending_.push_back(&e);
    link(e, w);
    schedule_dispatch();
  }

  // The cached value of a load made on the loader's own thread, counted as a load and a
  // hit; nullptr when not cached or when called elsewhere (the load then takes the
  // queued path, which also checks the cache).
  const V* cached_here(const K& key) {
    if (!cache_.enabled() || shut_down_ || !probe_.running_here()) return nullptr;
    const V* v = cache_.find(key);
    if (v != nullptr) {
      counters_->loads.add();
      counters_->cache_hits.add();
    }
    return v;
  }

  // Called from a cancellation handler, which must not be destroyed while it runs:
  // completing the waiter clears its slot, so the completion is posted.
  void cancel(waiter<V>* w) override {
    if (!w->registered) {
      w->cancel_requested = true;  // load() has not run yet: it aborts on arrival
      return;
    }
    if (w->owner == nullptr) return;  // already completed or about to be
    unlink(*static_cast<entry*>(w->owner), w);
    counters_->cancelled.add();
    asio::post(ex_, deferred_abort{waiter_ptr<V>(w), ex_});
  }

  void prime(const K& key, const V& value) { cache_.put_if_absent(key, value); }

  void clear(const K& key) {
    cache_.erase(key);
    if (entry** found = index_.find(key); found && (*found)->dispatched) detach(**found);
  }

  void clear_all() {
    cache_.clear();
    std::vector<entry*> in_flight;
    index_.for_each([&](const K&, entry* e) {
      if (e->dispatched) in_flight.push_back(e);
    });
    for (entry* e : in_flight) detach(*e);
  }

  // The public loader is gone: fail every waiter, stop dispatching. Batches in flight
  // keep the core alive until they complete.
  void shutdown() {
    shut_down_ = true;
    if (window_timer_) window_timer_->cancel();
    for (auto& e : storage_)
      while (waiter<V>* w = e->head) {
        unlink(*e, w);
        counters_->cancelled.add();
        w->complete(failure{asio::error::operation_aborted, "loader destroyed"}, ex_, true);
      }
  }

 private:
  struct entry : waiter_owner {
    K key{};
    waiter<V>* head = nullptr;
    waiter<V>* tail = nullptr;
    std::size_t waiters = 0;
    bool dispatched = false;
    bool detached = false;
  };

  class batch final : public batch_sink<V>, public std::enable_shared_from_this<batch> {
   public:
    explicit batch(std::shared_ptr<loader_core> core) : core_(std::move(core)) {}
    std::vector<K> keys;
    std::vector<entry*> entries;

   private:
    void deliver(batch_outcome<V>&& outcome) override {
      asio::dispatch(core_->ex_, [self = this->shared_from_this(), o = std::move(outcome)]() mutable {
        self->core_->complete_batch(*self, std::move(o));
      });
    }
    void report_violation() override {
      asio::dispatch(core_->ex_, [core = core_] { core->counters_->contract_violations.add(); });
    }
    std::shared_ptr<loader_core> core_;
  };

  // An unlinked waiter whose abort is queued; freed if the queue dies first.
  struct deferred_abort {
    waiter_ptr<V> w;
    executor_type ex;
    void operator()() {
      w.release()->complete(failure{asio::error::operation_aborted, "load cancelled"}, ex, false);
    }
  };

  entry& acquire_entry(K&& key) {
    entry* e;
    if (!free_.empty()) {
      e = free_.back();
      free_.pop_back();
    } else {
      e = storage_.emplace_back(std::make_unique<entry>()).get();
    }
    e->key = std::move(key);
    e->dispatched = false;
    e->detached = false;
    return *e;
  }

  void release_entry(entry& e) { free_.push_back(&e); }

  static void link(entry& e, waiter<V>* w) {
    w->owner = &e;
    w->next = nullptr;
    w->prev = e.tail;
    if (e.tail) e.tail->next = w;
    else e.head = w;
    e.tail = w;
    ++e.waiters;
  }

  static void unlink(entry& e, waiter<V>* w) {
    if (w->prev) w->prev->next = w->next;
    else e.head = w->next;
    if (w->next) w->next->prev = w->prev;
    else e.tail = w->prev;
    w->owner = nullptr;
    --e.waiters;
  }

  void detach(entry& e) {
    e.detached = true;
    index_.erase(e.key);
  }

  void schedule_dispatch() {
    if (opts_.batch_window.count() > 0) {
      if (!timer_armed_) {
        timer_armed_ = true;
        window_timer_->expires_after(opts_.batch_window);
        window_timer_->async_wait([self = this->shared_from_this()](error_code) {
          self->timer_armed_ = false;
          self->dispatch();
        });
      } else if (pending_.size() >= opts_.max_batch_size) {
        window_timer_->cancel();  // a full batch goes now; the wait handler dispatches
      }
      return;
    }
    if (dispatch_posted_) return;
    dispatch_posted_ = true;
    auto job = [self = this->shared_from_this()] {
      self->dispatch_posted_ = false;
      self->dispatch();
    };
    // On a strand, go round the underlying event loop first: handlers already queued there
    // (other connections' requests, say) get to add their keys before the batch leaves.
    if (const auto& inner = probe_.inner())
      asio::post(*inner, [ex = ex_, job = std::move(job)]() mutable { asio::post(ex, std::move(job)); });
    else
      asio::post(ex_, std::move(job));
  }

  void dispatch() {
    if (pending_.empty()) return;
    std::vector<entry*> ready;
    if (std::size_t full = pending_.size() - pending_.size() % opts_.max_batch_size; gathering()) {
      // Saturated consumer: full batches go, the rest keeps gathering.
      if (full == 0) return;
      ready.assign(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(full));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(full));
    } else {
      ready.swap(pending_);
      pending_.swap(spare_);  // reuse capacity: pending_ is empty again
    }
    std::vector<std::shared_ptr<batch>> batches;
    std::shared_ptr<batch> current;
    for (entry* e : ready) {
      if (e->waiters == 0) {  // every waiter was cancelled before dispatch
        index_.erase(e->key);
        release_entry(*e);
        continue;
      }
      if (!current || current->keys.size() == opts_.max_batch_size) {
        current = std::make_shared<batch>(this->shared_from_this());
        const std::size_t room = std::min(opts_.max_batch_size, ready.size());
        current->keys.reserve(room);
        current->entries.reserve(room);
        batches.push_back(current);
      }
      e->dispatched = true;
      current->keys.push_back(e->key);
      current->entries.push_back(e);
    }
    ready.clear();
    spare_.swap(ready);
    // All calls start before any result is handled: split batches run concurrently.
    for (auto& b : batches) {
      counters_->record_batch(b->keys.size());
      call_batch_function(b);
    }
  }

  // Smart batching (loader_options::hold): true while batches that are not full should
  // keep gathering keys. Asks the hold at most once per `go`; a loader shutting down never
  // waits.
  bool gathering() {
    if (!opts_.hold || shut_down_) return false;
    if (holding_) return true;
    holding_ = opts_.hold([weak = this->weak_from_this()] {
      if (auto self = weak.lock()) {
        self->holding_ = false;
        self->dispatch();
      }
    });
    return holding_;
  }

  void call_batch_function(const std::shared_ptr<batch>& b) {
    b->begin_call();
    try {
      fn_(std::span<const K>(b->keys), batch_completion<V>(b));
    } catch (const std::exception& ex) {
      b->end_call();
      b->try_deliver(failure{errc::batch_threw, std::string("batch function threw: ") + ex.what()});
      return;
    } catch (...) {
      b->end_call();
      b->try_deliver(failure{errc::batch_threw, "batch function threw a non-standard exception"});
      return;
    }
    if (b->end_call()) b->try_deliver(batch_sink<V>::abandoned_failure());
  }

  void complete_batch(batch& b, batch_outcome<V>&& outcome) {
    const std::size_t n = b.entries.size();
    if (auto* results = std::get_if<0>(&outcome); results && results->size() != n) {
      counters_->contract_violations.add();
      outcome = failure{errc::wrong_result_count,
                        "batch function returned " + std::to_string(results->size()) +
                            " results for " + std::to_string(n) +
                            " keys; it must return one result per key, in key order"};
    } else if (!results) {
      const auto& f = std::get<1>(outcome);
      if (f.code == errc::batch_threw || f.code == errc::batch_abandoned)
        counters_->contract_violations.add();
    }
    auto* results = std::get_if<0>(&outcome);
    // Out of the index before any waiter resumes. When this batch holds every indexed
    // key (the common steady state), one clear beats erasing key by key.
    std::size_t indexed = 0;
    for (entry* e : b.entries) indexed += e->detached ? 0 : 1;
    if (indexed == index_.size()) {
      index_.clear();
    } else {
      for (entry* e : b.entries)
        if (!e->detached) index_.erase(e->key);
    }
    for (std::size_t i = 0; i < n; ++i) {
      entry& e = *b.entries[i];
      result<V> r = results ? std::move((*results)[i]) : result<V>(std::get<1>(outcome));
      if (r.has_value()) {
        if (!e.detached && cache_.enabled()) cache_.put(e.key, *r);
      } else {
        counters_->errors.add();
      }
      // A resumed waiter may cancel later waiters of this entry: re-read head each time.
      while (waiter<V>* w = e.head) {
        unlink(e, w);
        if (e.head == nullptr) w->complete(std::move(r), ex_, false);
        else w->complete(result<V>(r), ex_, false);
      }
      release_entry(e);
    }
  }

  executor_type ex_;
  executor_probe probe_{ex_};
  batch_function fn_;
  loader_options opts_;
  std::shared_ptr<loader_counters> counters_ = std::make_shared<loader_counters>();
  loader_registry::registration registration_;
  value_cache<K, V, Hash, KeyEqual> cache_;
  flat_index<K, entry*, Hash, KeyEqual> index_;
  std::vector<entry*> pending_;
  std::vector<entry*> spare_;
  std::vector<std::unique_ptr<entry>> storage_;
  std::vector<entry*> free_;
  std::optional<asio::steady_timer> window_timer_;  // only with a batch window
  bool timer_armed_ = false;
  bool dispatch_posted_ = false;
  bool holding_ = false;  // a hold's `go` is outstanding
  bool shut_down_ = false;
};

}  // namespace dataloader::detail
