// How the store's operations complete: a coroutine on the store's executor that yields a
// result<T> becomes an asynchronous operation completing with void(error_code, T), with
// the error's readable message written to the caller's diagnostics, for any token.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/result.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include <exception>
#include <utility>

namespace dataloader::store::detail {

namespace asio = boost::asio;

// Splits `r` into what the caller's handler receives. An exception out of the coroutine is
// a bug of the library, reported as errc::internal with its text.
template <class T>
std::pair<error_code, T> settle(std::exception_ptr thrown, result<T>&& r, diagnostics* diag) {
  if (thrown) {
    std::string what = "unexpected failure";
    try {
      std::rethrow_exception(thrown);
    } catch (const std::exception& e) {
      what += std::string(": ") + e.what();
    } catch (...) {
    }
    if (diag) diag->assign(std::move(what));
    return {errc::internal, T{}};
  }
  if (!r) {
    auto f = std::move(r).get_failure();
    if (diag) diag->assign(std::move(f.message));
    return {f.code, T{}};
  }
  if (diag) diag->clear();
  return {error_code{}, std::move(*r)};
}

template <class T, class Executor, class CompletionToken>
auto complete_as_error_code(const Executor& ex, asio::awaitable<result<T>> op, diagnostics* diag,
                            CompletionToken&& token) {
  return asio::co_spawn(ex, std::move(op), asio::deferred([diag](std::exception_ptr thrown, result<T> r) {
           auto [ec, value] = settle(thrown, std::move(r), diag);
           return asio::deferred.values(ec, std::move(value));
         }))(std::forward<CompletionToken>(token));
}

}  // namespace dataloader::store::detail
