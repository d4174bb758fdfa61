// The completion a callback-form batch function receives. The loader guarantees that no
// waiter hangs whatever the batch function does with it:
//   - invoked once: the results go to the waiters;
//   - invoked again: refused with errc::batch_completed_twice (the waiters already have
//     the first answer) and counted as a contract violation;
//   - destroyed without being invoked: every waiter gets errc::batch_abandoned.
// It may be invoked from any thread; the results are handed to the loader's executor.
// Like any Asio object it must not outlive the execution context of the loader's executor.
#pragma once

#include "dataloader/error.hpp"
#include "dataloader/result.hpp"

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace dataloader {
namespace detail {

template <class V>
using batch_outcome = std::variant<std::vector<result<V>>, failure>;

// Implemented by the loader's batch. flags_ makes completion race-free across threads:
// whoever sets `completed` first delivers; an abandonment during the synchronous call of
// the batch function is left for the caller to report once the call has returned.
template <class V>
class batch_sink {
 public:
  virtual ~batch_sink() = default;

  bool try_deliver(batch_outcome<V>&& outcome) {
    if (flags_.fetch_or(completed) & completed) {
      report_violation();
      return false;
    }
    deliver(std::move(outcome));
    return true;
  }

  void abandon() {
    if (flags_.fetch_or(abandoned) & in_call) return;  // end_call reports it
    try_deliver(abandoned_failure());
  }

  void begin_call() noexcept { flags_.fetch_or(in_call); }
  // Returns whether the completion was abandoned while the batch function was running.
  bool end_call() noexcept { return flags_.fetch_and(~in_call) & abandoned; }
  bool completed_already() const noexcept { return flags_.load() & completed; }

  static failure abandoned_failure() {
    return {errc::batch_abandoned,
            "batch function dropped its completion without calling it"};
  }

 protected:
  virtual void deliver(batch_outcome<V>&& outcome) = 0;
  virtual void report_violation() = 0;

 private:
  static constexpr unsigned in_call = 1, abandoned = 2, completed = 4;
  std::atomic<unsigned> flags_{0};
};

}  // namespace detail

template <class V>
class batch_completion {
 public:
  explicit batch_completion(std::shared_ptr<detail::batch_sink<V>> sink)
      : sink_(std::move(sink)) {}
  batch_completion(batch_completion&&) noexcept = default;
  batch_completion& operator=(batch_completion&& o) noexcept {
    if (this != &o) {
      release();
      sink_ = std::move(o.sink_);
    }
    return *this;
  }
  batch_completion(const batch_completion&) = delete;
  batch_completion& operator=(const batch_completion&) = delete;
  ~batch_completion() { release(); }

  // One result per key, in the order of the keys the batch function was given.
  error_code operator()(std::vector<result<V>> results) {
    return finish(std::move(results));
  }
  // Fails the whole call: every waiter of this batch gets `code` and `message`.
  error_code fail(error_code code, std::string message) {
    return finish(failure{code, std::move(message)});
  }

 private:
  error_code finish(detail::batch_outcome<V>&& outcome) {
    if (!sink_ || !sink_->try_deliver(std::move(outcome))) return errc::batch_completed_twice;
    return {};
  }
  void release() {
    if (sink_ && !sink_->completed_already()) sink_->abandon();
    sink_.reset();
  }

  std::shared_ptr<detail::batch_sink<V>> sink_;
};

}  // namespace dataloader
