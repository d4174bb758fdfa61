// Adapts the batch function forms a user may write to the one form the core calls,
// void(std::span<const K>, batch_completion<V>):
//   callback   void(std::span<const K>, batch_completion<V>)
//   direct     R(std::span<const K>)
//   coroutine  asio::awaitable<R>(std::span<const K>)
// where R is positional, std::vector<V> or std::vector<result<V>> (one per key, in key
// order), or a map from key to V (std::unordered_map, std::map, ...) in which a missing
// key resolves as errc::not_found.
#pragma once

#include "dataloader/loader/batch_completion.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dataloader::detail {

namespace asio = boost::asio;

template <class T>
struct is_awaitable : std::false_type {};
template <class T, class Ex>
struct is_awaitable<asio::awaitable<T, Ex>> : std::true_type {
  using value_type = T;
};

template <class R, class K>
concept key_map = requires(const R& r, const K& k) {
  typename R::mapped_type;
  r.find(k) != r.end();
};

template <class K, class V, class R>
std::vector<result<V>> to_results(R&& r, std::span<const K> keys) {
  using T = std::decay_t<R>;
  if constexpr (std::is_same_v<T, std::vector<result<V>>>) {
    return std::move(r);
  } else if constexpr (key_map<T, K>) {
    std::vector<result<V>> out;
    out.reserve(keys.size());
    for (const auto& k : keys) {
      auto it = r.find(k);
      if (it == r.end())
        out.emplace_back(failure{errc::not_found, "batch function returned no value for this key"});
      else
        out.emplace_back(result<V>(V(it->second)));
    }
    return out;
  } else {
    static_assert(std::is_convertible_v<typename T::value_type, V>,
                  "a batch function returns std::vector<V>, std::vector<result<V>>, "
                  "or a map from key to V");
    std::vector<result<V>> out;
    out.reserve(r.size());
    for (auto& v : r) out.emplace_back(result<V>(V(std::move(v))));
    return out;
  }
}

inline std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return std::string("batch function threw: ") + ex.what();
  } catch (...) {
    return "batch function threw a non-standard exception";
  }
}

template <class K, class V, class F>
std::function<void(std::span<const K>, batch_completion<V>)> adapt_batch_function(
    F fn, const asio::any_io_executor& ex) {
  if constexpr (std::is_invocable_v<F&, std::span<const K>, batch_completion<V>>) {
    return fn;
  } else {
    static_assert(std::is_invocable_v<F&, std::span<const K>>,
                  "a batch function takes (std::span<const K>) or "
                  "(std::span<const K>, batch_completion<V>)");
    using R = std::invoke_result_t<F&, std::span<const K>>;
    if constexpr (is_awaitable<R>::value) {
      return [fn = std::move(fn), ex](std::span<const K> keys, batch_completion<V> done) mutable {
        asio::co_spawn(ex, fn(keys),
                       [keys, done = std::move(done)](std::exception_ptr e, auto r) mutable {
                         if (e)
                           done.fail(errc::batch_threw, describe_exception(e));
                         else
                           done(to_results<K, V>(std::move(r), keys));
                       });
      };
    } else {
      return [fn = std::move(fn)](std::span<const K> keys, batch_completion<V> done) mutable {
        done(to_results<K, V>(fn(keys), keys));
      };
    }
  }
}

}  // namespace dataloader::detail
