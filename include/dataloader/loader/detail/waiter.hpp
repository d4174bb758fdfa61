// A suspended load: the caller's completion handler, type-erased and linked into the
// waiter list of the key it waits for.
//
// Invariants:
//   - a waiter is completed exactly once, on the loader's executor, and its node is freed
//     (with the handler's associated allocator) before the handler is invoked;
//   - `owner` is non-null exactly while the waiter is linked into a key entry;
//   - "local" waiters (handler executor == loader executor) install a cancellation handler
//     that calls the loader directly and is removed from the slot when the waiter
//     completes; "remote" waiters install one that posts to the loader's executor and
//     checks there, through a shared token, that the waiter still exists.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <utility>
#include <vector>

namespace dataloader::detail {

namespace asio = boost::asio;

// What a linked waiter belongs to: the loader core's key entry (whose type depends on the
// key type, which a waiter does not know).
struct waiter_owner {};

template <class V>
struct waiter {
  using complete_fn = void (*)(waiter*, result<V>&&, const asio::any_io_executor&, bool post);
  using destroy_fn = void (*)(waiter*);

  waiter(complete_fn c, destroy_fn d) : complete_(c), destroy_(d) {}

  // post: never invoke the handler inline (used inside initiation and cancellation).
  void complete(result<V>&& r, const asio::any_io_executor& loader_ex, bool post) {
    complete_(this, std::move(r), loader_ex, post);
  }
  // Frees the node without invoking the handler (the loader died with its executor).
  void destroy() { destroy_(this); }

  waiter* prev = nullptr;
  waiter* next = nullptr;
  waiter_owner* owner = nullptr; // the key entry while linked
  bool registered = false;       // the loader has seen this waiter
  bool cancel_requested = false; // cancelled before the loader saw it

 private:
  complete_fn complete_;
  destroy_fn destroy_;
};

// Owns a waiter that the loader does not hold (yet): a registration or an abort queued on
// the loader's executor. If the queue is destroyed without running it (the execution
// context died first), the waiter is freed without invoking its handler.
template <class V>
class waiter_ptr {
 public:
  explicit waiter_ptr(waiter<V>* w) noexcept : w_(w) {}
  waiter_ptr(waiter_ptr&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
  waiter_ptr& operator=(waiter_ptr&&) = delete;
  ~waiter_ptr() {
    if (w_) w_->destroy();
  }
  waiter<V>* release() noexcept { return std::exchange(w_, nullptr); }

 private:
  waiter<V>* w_;
};

// What a waiter's cancellation handler needs from the loader.
template <class V>
class cancel_target {
 public:
  virtual void cancel(waiter<V>* w) = 0;
  virtual const asio::any_io_executor& executor() const noexcept = 0;
  virtual bool running_here() const noexcept = 0;
  virtual std::weak_ptr<cancel_target> weak_target() = 0;

 protected:
  ~cancel_target() = default;
};

// Shared between a remote waiter and its cancellation handler; `live` is read and written
// only on the loader's executor.
template <class V>
struct remote_token {
  std::weak_ptr<cancel_target<V>> target;
  std::vector<waiter<V>*> waiters;  // one, or the keys of a load_many
  bool live = true;
};

template <class V>
struct remote_cancel_handler {
  std::shared_ptr<remote_token<V>> token;
  void operator()(asio::cancellation_type_t) const {
    auto target = token->target.lock();
    if (!target) return;
    asio::post(target->executor(), [tok = token, target] {
      if (!tok->live) return;
      for (auto* w : tok->waiters) target->cancel(w);
    });
  }
};

template <class V>
struct local_cancel_handler {
  cancel_target<V>* target;
  waiter<V>* const* waiters;
  std::size_t count;
  void operator()(asio::cancellation_type_t) const {
    for (std::size_t i = 0; i < count; ++i) target->cancel(waiters[i]);
  }
};

// Cancellation wiring for one operation (a load, or a whole load_many).
template <class V>
class cancellation_link {
 public:
  template <class Handler>
  void connect(const Handler& h, cancel_target<V>& target, bool local,
               waiter<V>* const* waiters, std::size_t count) {
    auto slot = asio::get_associated_cancellation_slot(h);
    if (!slot.is_connected()) return;
    if (local) {
      slot_ = slot;
      slot.template emplace<local_cancel_handler<V>>(
          local_cancel_handler<V>{&target, waiters, count});
    } else {
      token_ = std::allocate_shared<remote_token<V>>(asio::recycling_allocator<void>());
      token_->target = target.weak_target();
      token_->waiters.assign(waiters, waiters + count);
      slot.template emplace<remote_cancel_handler<V>>(remote_cancel_handler<V>{token_});
    }
  }
  // On the loader's executor, when the operation completes.
  void disconnect() {
    if (slot_.is_connected()) slot_.clear();
    if (token_) token_->live = false;
  }

 private:
  asio::cancellation_slot slot_;
  std::shared_ptr<remote_token<V>> token_;
};

// How the handler of a single load receives its outcome.
enum class completion_style {
  error_code,   // void(error_code, V)
  exception,    // void(std::exception_ptr, V): for use_awaitable, throws load_error
};

template <class Handler>
auto handler_allocator(const Handler& h) {
  return asio::get_associated_allocator(h, asio::recycling_allocator<void>());
}

// Node allocation with the handler's associated allocator (Asio's recycling allocator
// unless the handler names one), so the steady state allocates nothing per load.
template <class Node, class Handler, class... Args>
Node* allocate_node(const Handler& h, Args&&... args) {
  using alloc_t = typename std::allocator_traits<
      decltype(handler_allocator(h))>::template rebind_alloc<Node>;
  alloc_t alloc(handler_allocator(h));
  Node* p = std::allocator_traits<alloc_t>::allocate(alloc, 1);
  try {
    std::allocator_traits<alloc_t>::construct(alloc, p, std::forward<Args>(args)...);
  } catch (...) {
    std::allocator_traits<alloc_t>::deallocate(alloc, p, 1);
    throw;
  }
  return p;
}

template <class Node, class Handler>
void free_node(Node* p, const Handler& h) {
  using alloc_t = typename std::allocator_traits<
      decltype(handler_allocator(h))>::template rebind_alloc<Node>;
  alloc_t alloc(handler_allocator(h));
  std::allocator_traits<alloc_t>::destroy(alloc, p);
  std::allocator_traits<alloc_t>::deallocate(alloc, p, 1);
}

// `inline_ok`: the handler's executor is the loader's and the caller runs on it, so
// invoking the handler here is what asio::dispatch would do, minus its cost.
template <class Handler, class... Args>
void invoke_on_executor(Handler&& h, const asio::any_io_executor& loader_ex, bool post,
                        bool inline_ok, Args&&... args) {
  if (!post && inline_ok) {
    std::forward<Handler>(h)(std::forward<Args>(args)...);
    return;
  }
  auto ex = asio::get_associated_executor(h, loader_ex);
  auto bound = asio::append(std::forward<Handler>(h), std::forward<Args>(args)...);
  if (post)
    asio::post(ex, std::move(bound));
  else
    asio::dispatch(ex, std::move(bound));
}

// Work on the handler's executor is tracked only when it differs from the loader's:
// the loader's own executor always has a dispatch job, timer or batch outstanding
// while a waiter is linked.
template <class Handler>
std::optional<asio::any_io_executor> track_work(const Handler& h,
                                                const asio::any_io_executor& loader_ex,
                                                bool local) {
  if (local) return std::nullopt;
  return asio::prefer(asio::any_io_executor(asio::get_associated_executor(h, loader_ex)),
                      asio::execution::outstanding_work.tracked);
}

template <class Handler>
bool is_local(const Handler& h, const asio::any_io_executor& loader_ex) {
  return asio::any_io_executor(asio::get_associated_executor(h, loader_ex)) == loader_ex;
}

// The waiter of one async_load / load.
template <class V, class Handler, completion_style Style>
class handler_waiter final : public waiter<V> {
 public:
  static handler_waiter* create(Handler&& h, diagnostics* diag, cancel_target<V>& target) {
    const bool local = is_local(h, target.executor());
    auto* w = allocate_node<handler_waiter>(h, std::move(h), diag, target.executor(), local);
    waiter<V>* self = w;
    w->links_[0] = self;
    w->cancel_.connect(w->handler_, target, local, w->links_, 1);
    return w;
  }

  handler_waiter(Handler&& h, diagnostics* diag, const asio::any_io_executor& loader_ex,
                 bool local)
      : waiter<V>(&do_complete, &do_destroy),
        handler_(std::move(h)),
        diag_(diag),
        local_(local),
        work_(track_work(handler_, loader_ex, local)) {}

 private:
  static void do_complete(waiter<V>* base, result<V>&& r, const asio::any_io_executor& ex,
                          bool post) {
    auto* self = static_cast<handler_waiter*>(base);
    self->cancel_.disconnect();
    Handler h(std::move(self->handler_));
    diagnostics* diag = self->diag_;
    const bool local = self->local_;
    free_node(self, h);

    if (diag != nullptr) {
      if (r.has_value()) diag->clear();
      else diag->assign(r.message());
    }
    if constexpr (Style == completion_style::error_code) {
      if (r.has_value())
        invoke_on_executor(std::move(h), ex, post, local, error_code{}, std::move(*r));
      else
        invoke_on_executor(std::move(h), ex, post, local, r.error(), V{});
    } else {
      if (r.has_value())
        invoke_on_executor(std::move(h), ex, post, local, std::exception_ptr{}, std::move(*r));
      else
        invoke_on_executor(std::move(h), ex, post, local,
                           std::make_exception_ptr(load_error(r.error(), r.message())), V{});
    }
  }

  static void do_destroy(waiter<V>* base) {
    auto* self = static_cast<handler_waiter*>(base);
    self->cancel_.disconnect();
    Handler h(std::move(self->handler_));
    free_node(self, h);
  }

  Handler handler_;
  diagnostics* diag_;
  bool local_;
  std::optional<asio::any_io_executor> work_;
  cancellation_link<V> cancel_;
  waiter<V>* links_[1] = {nullptr};
};

// load_many: one handler, one sub-waiter per key; the handler runs when the last key
// has its result.
template <class V, class Handler>
class many_op {
  struct sub final : waiter<V> {
    sub() : waiter<V>(&sub_complete, &sub_destroy) {}
    many_op* op = nullptr;
    std::size_t index = 0;
  };

 public:
  static many_op* create(Handler&& h, std::size_t count, cancel_target<V>& target) {
    const bool local = is_local(h, target.executor());
    auto* op = allocate_node<many_op>(h, std::move(h), count, target.executor(), local);
    op->cancel_.connect(op->handler_, target, local, op->links_.data(), count);
    return op;
  }

  many_op(Handler&& h, std::size_t count, const asio::any_io_executor& loader_ex, bool local)
      : handler_(std::move(h)),
        subs_(count),
        results_(count),
        links_(count),
        remaining_(count),
        local_(local),
        work_(track_work(handler_, loader_ex, local)) {
    for (std::size_t i = 0; i < count; ++i) {
      subs_[i].op = this;
      subs_[i].index = i;
      links_[i] = &subs_[i];
    }
  }

  waiter<V>* waiter_at(std::size_t i) { return &subs_[i]; }

  // Frees an operation none of whose keys reached the loader, without invoking it.
  struct discard {
    void operator()(many_op* op) const {
      if (op->subs_.empty()) {
        op->cancel_.disconnect();
        Handler h(std::move(op->handler_));
        free_node(op, h);
        return;
      }
      for (std::size_t i = 0, n = op->subs_.size(); i < n; ++i) sub_destroy(op->links_[i]);
    }
  };

  // Completes an empty request (no keys); must not run inline.
  void complete_empty(const asio::any_io_executor& ex) { finish(ex, true); }

 private:
  static void sub_complete(waiter<V>* base, result<V>&& r, const asio::any_io_executor& ex,
                           bool post) {
    auto* s = static_cast<sub*>(base);
    many_op* op = s->op;
    op->results_[s->index].emplace(std::move(r));
    if (--op->remaining_ == 0) op->finish(ex, post);
  }
  static void sub_destroy(waiter<V>* base) {
    auto* op = static_cast<sub*>(base)->op;
    if (--op->remaining_ == 0) {
      op->cancel_.disconnect();
      Handler h(std::move(op->handler_));
      free_node(op, h);
    }
  }

  void finish(const asio::any_io_executor& ex, bool post) {
    cancel_.disconnect();
    std::vector<result<V>> out;
    out.reserve(results_.size());
    error_code ec;  // operation_aborted when any key was (cancelled, or the loader destroyed)
    for (auto& r : results_) {
      if (r->error() == asio::error::operation_aborted) ec = asio::error::operation_aborted;
      out.push_back(std::move(*r));
    }
    Handler h(std::move(handler_));
    const bool local = local_;
    free_node(this, h);
    invoke_on_executor(std::move(h), ex, post, local, ec, std::move(out));
  }

  Handler handler_;
  std::vector<sub> subs_;
  std::vector<std::optional<result<V>>> results_;
  std::vector<waiter<V>*> links_;
  std::size_t remaining_;
  bool local_;
  std::optional<asio::any_io_executor> work_;
  cancellation_link<V> cancel_;
};

}  // namespace dataloader::detail
