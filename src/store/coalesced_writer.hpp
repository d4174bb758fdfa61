// Writes from many callers in one tick become one statement group (one transaction).
// When the server rejects it, the callers are split in halves and each half is retried,
// down to the single caller whose data fails: everyone else's write commits, and only
// that caller gets the server's error. Anything but a server error (a lost connection, a
// timeout) fails every caller of the group, since it is nobody's fault in particular.
//
// Runs on the store's executor (the pool's strand); knows nothing of the store beyond the
// function that sends a group.
#pragma once

#include "outcome.hpp"

#include "dataloader/detail/single_writer_counter.hpp"
#include "dataloader/loader/loader.hpp"
#include "dataloader/pg/sqlstate.hpp"
#include "dataloader/pg/statement.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

namespace dataloader::store::detail {

template <class Request, class Response>
class coalesced_writer {
 public:
  // Statements for a set of callers; answers for them from the group's results.
  using build_fn = std::function<std::vector<pg::query>(std::span<const Request* const>)>;
  using answer_fn = std::function<std::vector<Response>(std::span<const Request* const>, const std::vector<pg::result>&)>;
  // Sends a group of writes (never retried on a lost connection).
  using send_fn = std::function<asio::awaitable<group_outcome>(std::vector<pg::query>)>;

  coalesced_writer(asio::any_io_executor ex, loader_options options, send_fn send, build_fn build, answer_fn answer,
                   dataloader::detail::single_writer_counter& retried_statements)
      : send_(std::move(send)),
        build_(std::move(build)),
        answer_(std::move(answer)),
        retried_statements_(retried_statements),
        loader_(std::move(ex),
                [this](std::span<const std::uint64_t> ids) -> asio::awaitable<std::vector<result<Response>>> {
                  std::vector<const Request*> requests;
                  for (auto id : ids) requests.push_back(&pending_.at(id));
                  auto out = co_await run(std::move(requests));
                  for (auto id : ids) pending_.erase(id);
                  co_return out;
                },
                std::move(options)) {}
  // Its loader's batch function refers to this object: it stays where it was built.
  coalesced_writer(const coalesced_writer&) = delete;
  coalesced_writer& operator=(const coalesced_writer&) = delete;

  // The caller's answer once its write committed (or why it did not).
  asio::awaitable<result<Response>> submit(Request request) {
    const auto id = next_id_++;
    pending_.emplace(id, std::move(request));
    diagnostics diag;
    auto [ec, value] = co_await loader_.async_load(id, diag, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return failure{ec, diag.message()};
    co_return value;
  }

 private:
  asio::awaitable<std::vector<result<Response>>> run(std::vector<const Request*> requests) {
    auto queries = build_(requests);
    group_outcome outcome;
    if (!queries.empty()) outcome = co_await send_(std::move(queries));
    if (!outcome.ec) {
      std::vector<result<Response>> out;
      for (auto&& r : answer_(requests, outcome.results)) out.emplace_back(Response(r));
      co_return out;
    }
    if (!pg::is_server_error(outcome.ec) || requests.size() == 1)
      co_return fail_all<Response>(requests.size(), failure_of(outcome.ec, outcome.diag));
    const auto half = requests.size() / 2;
    std::vector<const Request*> first(requests.begin(), requests.begin() + half);
    std::vector<const Request*> second(requests.begin() + half, requests.end());
    retried_statements_.add(2);
    auto left = co_await run(std::move(first));
    auto right = co_await run(std::move(second));
    for (auto& r : right) left.push_back(std::move(r));
    co_return left;
  }

  send_fn send_;
  build_fn build_;
  answer_fn answer_;
  dataloader::detail::single_writer_counter& retried_statements_;
  std::unordered_map<std::uint64_t, Request> pending_;
  std::uint64_t next_id_ = 1;
  loader<std::uint64_t, Response> loader_;
};

}  // namespace dataloader::store::detail
