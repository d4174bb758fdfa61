// Randomized: thousands of loads, writes (clear / prime), cancellations and batch
// completions in random order over random ticks, checked against a simple model.
//
// The "database" keeps a version per key. A batch reads the versions when it is sent
// (when the batch function is called) and answers later, in random order. A write bumps
// the version and then clears the key (the write is acknowledged after that). Invariants:
//   - every waiter gets the answer for its own key, from a batch that holds that key;
//   - no load sees a version older than the last write acknowledged before it started;
//   - no batch exceeds max_batch_size or holds a key twice;
//   - every load completes exactly once, and nothing is left waiting at the end.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <map>
#include <random>
#include <set>

using namespace dataloader;
namespace asio = boost::asio;

namespace {

constexpr int key_space = 24;
constexpr int encode(int key, int version) { return key * 1'000'000 + version; }

struct model_run {
  explicit model_run(loader_options opts, unsigned seed) : opts_(opts), rng_(seed) {}

  void run(int steps) {
    asio::io_context io;
    loader<int, int> l(io.get_executor(), batch_function(), opts_);
    for (int step = 0; step < steps; ++step) {
      const int action = pick(100);
      if (action < 40) start_load(l);
      else if (action < 45) start_load_many(l);
      else if (action < 55) write(l);
      else if (action < 62) cancel_one();
      else if (action < 82) answer_one();
      else test::step(io);
    }
    for (test::step(io); !calls_.empty(); test::step(io)) answer_one();
    test::finish(io);
    CHECK(outstanding_.empty());
    CHECK(completed_ == started_);
    const auto s = l.stats();
    CHECK(s.loads == static_cast<std::uint64_t>(started_));
    CHECK(s.max_batch <= opts_.max_batch_size);
  }

 private:
  struct held_call {
    std::vector<int> keys;
    std::vector<int> versions;  // read when the batch was sent
    batch_completion<int> done;
  };
  struct pending_load {
    int key;
    int min_version;  // last write acknowledged before the load started
    std::unique_ptr<asio::cancellation_signal> signal;
  };

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  std::function<void(std::span<const int>, batch_completion<int>)> batch_function() {
    return [this](std::span<const int> keys, batch_completion<int> done) {
      CHECK(keys.size() <= opts_.max_batch_size);
      CHECK(std::set<int>(keys.begin(), keys.end()).size() == keys.size());
      held_call c{{keys.begin(), keys.end()}, {}, std::move(done)};
      for (int k : keys) c.versions.push_back(version_[k]);
      calls_.push_back(std::move(c));
    };
  }

  void start_load(loader<int, int>& l) {
    const int key = pick(key_space);
    const int id = next_id_++;
    auto& p = outstanding_[id] = {key, version_[key], std::make_unique<asio::cancellation_signal>()};
    ++started_;
    l.async_load(key, asio::bind_cancellation_slot(p.signal->slot(), [this, id](error_code ec, int v) {
      finish(id, ec, v);
    }));
  }

  void start_load_many(loader<int, int>& l) {
    std::vector<int> keys;
    std::vector<int> mins;
    for (int i = 0, n = 1 + pick(6); i < n; ++i) {
      keys.push_back(pick(key_space));
      mins.push_back(version_[keys.back()]);
    }
    started_ += static_cast<int>(keys.size());
    l.async_load_many(keys, [this, keys, mins](error_code ec, std::vector<result<int>> r) {
      CHECK(!ec);  // per-key failures are in the results, not the operation's code
      REQUIRE(r.size() == keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        ++completed_;
        if (r[i]) check_value(keys[i], mins[i], *r[i]);
        else CHECK(r[i].error() == errc::batch_failed);
      }
    });
  }

  void write(loader<int, int>& l) {
    const int key = pick(key_space);
    ++version_[key];
    l.clear(key);
    if (pick(2) == 0) l.prime(key, encode(key, version_[key]));
  }

  void cancel_one() {
    if (outstanding_.empty()) return;
    auto it = std::next(outstanding_.begin(), pick(static_cast<int>(outstanding_.size())));
    it->second.signal->emit(asio::cancellation_type::terminal);
  }

  void answer_one() {
    if (calls_.empty()) return;
    auto it = std::next(calls_.begin(), pick(static_cast<int>(calls_.size())));
    held_call c = std::move(*it);
    calls_.erase(it);
    std::vector<result<int>> out;
    for (std::size_t i = 0; i < c.keys.size(); ++i)
      if (pick(20) == 0) out.emplace_back(failure{errc::batch_failed, "random failure"});
      else out.emplace_back(encode(c.keys[i], c.versions[i]));
    c.done(std::move(out));
  }

  void finish(int id, error_code ec, int value) {
    auto it = outstanding_.find(id);
    REQUIRE(it != outstanding_.end());  // completes exactly once
    ++completed_;
    if (!ec) check_value(it->second.key, it->second.min_version, value);
    else CHECK((ec == asio::error::operation_aborted || ec == errc::batch_failed));
    outstanding_.erase(it);
  }

  void check_value(int key, int min_version, int value) {
    CHECK(value / 1'000'000 == key);
    CHECK(value % 1'000'000 >= min_version);
  }

  loader_options opts_;
  std::mt19937 rng_;
  std::map<int, int> version_;
  std::vector<held_call> calls_;
  std::map<int, pending_load> outstanding_;
  int next_id_ = 0, started_ = 0, completed_ = 0;
};

void run_model(cache_mode mode) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    loader_options opts;
    opts.max_batch_size = 1 + seed % 5;
    opts.cache = mode;
    opts.cache_max_entries = 8;
    model_run(opts, seed).run(3000);
  }
}

}  // namespace

TEST_CASE("random loads, writes and cancellations keep every invariant with the cache off") {
  run_model(cache_mode::off);
}
TEST_CASE("random loads, writes and cancellations keep every invariant with an unbounded cache") {
  run_model(cache_mode::unbounded);
}
TEST_CASE("random loads, writes and cancellations keep every invariant with an lru cache") {
  run_model(cache_mode::lru);
}
