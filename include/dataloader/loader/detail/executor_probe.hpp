// "Is the calling thread running inside this executor?", answered for the executor types
// that can tell (io_context and thread_pool executors, and strands over them); false for
// the others, which then take the always-correct queued path.
//
// The loader uses it to register a load and resume a waiter inline, without a trip
// through asio::dispatch on a type-erased executor: measured, that trip costs more than
// the rest of a load together.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <optional>

namespace dataloader::detail {

class executor_probe {
 public:
  // `ex` must outlive the probe and stay where it is: the probe points into it.
  explicit executor_probe(const boost::asio::any_io_executor& ex) noexcept {
    namespace asio = boost::asio;
    try_type<asio::io_context::executor_type>(ex) ||
        try_type<asio::strand<asio::io_context::executor_type>>(ex) ||
        try_type<asio::thread_pool::executor_type>(ex) ||
        try_type<asio::strand<asio::thread_pool::executor_type>>(ex) ||
        try_type<asio::strand<asio::any_io_executor>>(ex);
  }

  bool running_here() const noexcept { return fn_ != nullptr && fn_(target_); }

  // For a strand, the executor it runs on; empty otherwise. Posting there first lets a
  // dispatch wait for the whole event loop's current round, not only the strand's queue.
  const std::optional<boost::asio::any_io_executor>& inner() const noexcept { return inner_; }

 private:
  template <class Executor>
  bool try_type(const boost::asio::any_io_executor& ex) noexcept {
    const Executor* target = ex.target<Executor>();
    if (target == nullptr) return false;
    target_ = target;
    fn_ = [](const void* t) noexcept {
      return static_cast<const Executor*>(t)->running_in_this_thread();
    };
    if constexpr (requires { target->get_inner_executor(); })
      inner_.emplace(target->get_inner_executor());
    return true;
  }

  bool (*fn_)(const void*) noexcept = nullptr;
  const void* target_ = nullptr;
  std::optional<boost::asio::any_io_executor> inner_;
};

}  // namespace dataloader::detail
