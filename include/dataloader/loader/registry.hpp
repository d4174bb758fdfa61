// Loaders register their counters here under a name, so that a service can report all of
// them (/stats "loaders"). Several loaders may share a name (for example one loader per
// request): their counters are added up, and a loader's final counts are kept after it is
// destroyed, so the totals never go backwards.
#pragma once

#include "dataloader/loader/stats.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace dataloader {

class loader_registry {
 public:
  // Unregisters on destruction, folding the loader's final counts into its name's totals.
  class registration {
   public:
    registration() = default;
    registration(registration&& o) noexcept : registry_(o.registry_), id_(o.id_) { o.registry_ = nullptr; }
    registration& operator=(registration&& o) noexcept;
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;
    ~registration() { reset(); }
    void reset() noexcept;

   private:
    friend class loader_registry;
    registration(loader_registry* r, std::uint64_t id) : registry_(r), id_(id) {}
    loader_registry* registry_ = nullptr;
    std::uint64_t id_ = 0;
  };

  loader_registry() = default;
  loader_registry(const loader_registry&) = delete;
  loader_registry& operator=(const loader_registry&) = delete;

  // The registry must outlive every registration it hands out.
  [[nodiscard]] registration add(std::string name,
                                 std::shared_ptr<const detail::loader_counters> counters);

  // Totals per name: live loaders plus those already destroyed. Safe from any thread.
  std::map<std::string, loader_stats> snapshot() const;

 private:
  void remove(std::uint64_t id) noexcept;

  struct live_entry {
    std::string name;
    std::shared_ptr<const detail::loader_counters> counters;
  };
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, live_entry> live_;
  std::map<std::string, loader_stats> retired_;
};

inline loader_registry::registration&
loader_registry::registration::operator=(registration&& o) noexcept {
  if (this != &o) {
    reset();
    registry_ = o.registry_;
    id_ = o.id_;
    o.registry_ = nullptr;
  }
  return *this;
}

inline void loader_registry::registration::reset() noexcept {
  if (registry_ != nullptr) registry_->remove(id_);
  registry_ = nullptr;
}

inline loader_registry::registration loader_registry::add(
    std::string name, std::shared_ptr<const detail::loader_counters> counters) {
  std::lock_guard lock(mutex_);
  const auto id = next_id_++;
  retired_.try_emplace(name);  // the name is reported from now on, even at zero
  live_.emplace(id, live_entry{std::move(name), std::move(counters)});
  return registration(this, id);
}

inline void loader_registry::remove(std::uint64_t id) noexcept {
  std::lock_guard lock(mutex_);
  auto it = live_.find(id);
  if (it == live_.end()) return;
  retired_[it->second.name] += it->second.counters->snapshot();
  live_.erase(it);
}

inline std::map<std::string, loader_stats> loader_registry::snapshot() const {
  std::lock_guard lock(mutex_);
  auto totals = retired_;
  for (const auto& [id, entry] : live_) totals[entry.name] += entry.counters->snapshot();
  return totals;
}

}  // namespace dataloader
