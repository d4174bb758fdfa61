// A move-only, type-erased callable (std::move_only_function arrives with C++23).
#pragma once

#include <memory>
#include <utility>

namespace dataloader::detail {

template <class Signature>
class move_only_function;

template <class R, class... Args>
class move_only_function<R(Args...)> {
 public:
  move_only_function() = default;
  template <class F>
  move_only_function(F f) : impl_(std::make_unique<model<F>>(std::move(f))) {}

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  R operator()(Args... args) { return impl_->call(std::forward<Args>(args)...); }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual R call(Args... args) = 0;
  };
  template <class F>
  struct model final : concept_t {
    explicit model(F f) : fn(std::move(f)) {}
    R call(Args... args) override { return fn(std::forward<Args>(args)...); }
    F fn;
  };
  std::unique_ptr<concept_t> impl_;
};

}  // namespace dataloader::detail
