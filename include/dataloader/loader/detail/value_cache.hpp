// The loader's value cache: unbounded, or LRU-bounded, with an optional time-to-live.
// Only successful values are ever stored (errors are not cached).
#pragma once

#include "dataloader/loader/options.hpp"

#include <chrono>
#include <cstddef>
#include <list>
#include <unordered_map>

namespace dataloader::detail {

template <class K, class V, class Hash, class KeyEqual>
class value_cache {
 public:
  using clock = std::chrono::steady_clock;

  value_cache(cache_mode mode, std::size_t max_entries, clock::duration ttl)
      : mode_(mode), max_entries_(max_entries == 0 ? 1 : max_entries), ttl_(ttl) {}

  bool enabled() const noexcept { return mode_ != cache_mode::off; }
  std::size_t size() const noexcept { return index_.size(); }

  // The cached value, or nullptr. Expired entries are dropped on the way.
  const V* find(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    auto node = it->second;
    if (ttl_ != clock::duration::zero() && clock::now() >= node->expires) {
      order_.erase(node);
      index_.erase(it);
      return nullptr;
    }
    if (mode_ == cache_mode::lru) order_.splice(order_.begin(), order_, node);
    return &node->value;
  }

  // Stores value under key, replacing what was there.
  void put(const K& key, const V& value) { store(key, value, true); }
  // Stores value under key only if nothing (unexpired) is cached for it.
  void put_if_absent(const K& key, const V& value) { store(key, value, false); }

  bool erase(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  void clear() noexcept {
    index_.clear();
    order_.clear();
  }

 private:
  struct node {
    K key;
    V value;
    clock::time_point expires;
  };

  void store(const K& key, const V& value, bool replace) {
    if (!enabled()) return;
    if (!replace && find(key) != nullptr) return;
    const auto expires = ttl_ == clock::duration::zero() ? clock::time_point::max()
                                                          : clock::now() + ttl_;
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->value = value;
      it->second->expires = expires;
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.push_front(node{key, value, expires});
    index_.emplace(key, order_.begin());
    if (mode_ == cache_mode::lru && index_.size() > max_entries_) {
      index_.erase(order_.back().key);
      order_.pop_back();
    }
  }

  cache_mode mode_;
  std::size_t max_entries_;
  clock::duration ttl_;
  std::list<node> order_;  // most recently used first
  std::unordered_map<K, typename std::list<node>::iterator, Hash, KeyEqual> index_;
};

}  // namespace dataloader::detail
