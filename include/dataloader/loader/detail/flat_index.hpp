// Open-addressing hash map with linear probing and backward-shift deletion. It never
// allocates once it has grown to the working-set size, which keeps the loader's hot path
// free of per-load allocations (std::unordered_map allocates a node per insert).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace dataloader::detail {

template <class K, class T, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class flat_index {
 public:
  explicit flat_index(std::size_t initial_capacity = 16, Hash hash = {}, KeyEqual eq = {})
      : hash_(std::move(hash)), eq_(std::move(eq)) {
    std::size_t cap = 16;
    while (cap < initial_capacity) cap *= 2;
    slots_.resize(cap);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  T* find(const K& key) noexcept {
    for (std::size_t i = home(key);; i = next(i)) {
      slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (eq_(s.key, key)) return &s.value;
    }
  }

  // Precondition: key is absent.
  void insert(K key, T value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(std::move(key), std::move(value));
  }

  bool erase(const K& key) noexcept {
    std::size_t i = home(key);
    for (;; i = next(i)) {
      if (!slots_[i].used) return false;
      if (eq_(slots_[i].key, key)) break;
    }
    // Backward shift: pull later members of the probe run into the hole, so that lookups
    // never need tombstones.
    for (std::size_t j = next(i);; j = next(j)) {
      slot& s = slots_[j];
      if (!s.used) break;
      const std::size_t h = home(s.key);
      const bool movable = (i <= j) ? (h <= i || h > j) : (h <= i && h > j);
      if (movable) {
        slots_[i].key = std::move(s.key);
        slots_[i].value = std::move(s.value);
        i = j;
      }
    }
    slots_[i].used = false;
    --size_;
    return true;
  }

  template <class F>
  void for_each(F&& f) {
    for (auto& s : slots_)
      if (s.used) f(s.key, s.value);
  }

  void clear() noexcept {
    for (auto& s : slots_) s.used = false;
    size_ = 0;
  }

 private:
  struct slot {
    K key{};
    T value{};
    bool used = false;
  };

  std::size_t home(const K& key) const noexcept {
    // Fibonacci hashing spreads identity hashes (std::hash of integers) over the table.
    const std::uint64_t h = static_cast<std::uint64_t>(hash_(key)) * 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(h >> 32) & (slots_.size() - 1);
  }
  std::size_t next(std::size_t i) const noexcept { return (i + 1) & (slots_.size() - 1); }

  void place(K key, T value) {
    std::size_t i = home(key);
    while (slots_[i].used) i = next(i);
    slots_[i].key = std::move(key);
    slots_[i].value = std::move(value);
    slots_[i].used = true;
    ++size_;
  }

  void grow() {
    std::vector<slot> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (auto& s : old)
      if (s.used) place(std::move(s.key), std::move(s.value));
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual eq_;
};

}  // namespace dataloader::detail
