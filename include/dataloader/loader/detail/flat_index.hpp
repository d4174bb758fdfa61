// Open-addressing hash map with linear probing and backward-shift deletion. It never
// allocates once it has grown to the working-set size, which keeps the loader's hot path
// free of per-load allocations (std::unordered_map allocates a node per insert), and
// clear() is one memset of the occupancy bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

namespace dataloader::detail {

template <class K, class T, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class flat_index {
 public:
  explicit flat_index(Hash hash = {}, KeyEqual eq = {})
      : hash_(std::move(hash)), eq_(std::move(eq)) {
    resize(16);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  T* find(const K& key) noexcept {
    for (std::size_t i = home(key);; i = next(i)) {
      if (!used_[i]) return nullptr;
      if (eq_(keys_[i], key)) return &values_[i];
    }
  }

  // The value stored under key, and whether it was absent (then it is value-initialized
  // and the key is stored).
  std::pair<T*, bool> find_or_insert(const K& key) {
    if ((size_ + 1) * 2 > used_.size()) grow();
    std::size_t i = home(key);
    for (; used_[i]; i = next(i))
      if (eq_(keys_[i], key)) return {&values_[i], false};
    keys_[i] = key;
    values_[i] = T{};
    used_[i] = 1;
    ++size_;
    return {&values_[i], true};
  }

  bool erase(const K& key) noexcept {
    std::size_t i = home(key);
    for (;; i = next(i)) {
      if (!used_[i]) return false;
      if (eq_(keys_[i], key)) break;
    }
    // Backward shift: pull later members of the probe run into the hole, so that lookups
    // never need tombstones.
    for (std::size_t j = next(i);; j = next(j)) {
      if (!used_[j]) break;
      const std::size_t h = home(keys_[j]);
      const bool movable = (i <= j) ? (h <= i || h > j) : (h <= i && h > j);
      if (movable) {
        keys_[i] = std::move(keys_[j]);
        values_[i] = std::move(values_[j]);
        i = j;
      }
    }
    used_[i] = 0;
    --size_;
    return true;
  }

  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < used_.size(); ++i)
      if (used_[i]) f(keys_[i], values_[i]);
  }

  void clear() noexcept {
    std::memset(used_.data(), 0, used_.size());
    size_ = 0;
  }

 private:
  std::size_t home(const K& key) const noexcept {
    // Fibonacci hashing spreads identity hashes (std::hash of integers) over the table.
    const std::uint64_t h = static_cast<std::uint64_t>(hash_(key)) * 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(h >> 32) & mask_;
  }
  std::size_t next(std::size_t i) const noexcept { return (i + 1) & mask_; }

  void resize(std::size_t capacity) {
    keys_.assign(capacity, K{});
    values_.assign(capacity, T{});
    used_.assign(capacity, 0);
    mask_ = capacity - 1;
    size_ = 0;
  }

  void grow() {
    auto old_keys = std::move(keys_);
    auto old_values = std::move(values_);
    auto old_used = std::move(used_);
    resize(old_used.size() * 2);
    for (std::size_t i = 0; i < old_used.size(); ++i)
      if (old_used[i]) *find_or_insert(old_keys[i]).first = std::move(old_values[i]);
  }

  std::vector<K> keys_;
  std::vector<T> values_;
  std::vector<unsigned char> used_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual eq_;
};

}  // namespace dataloader::detail
