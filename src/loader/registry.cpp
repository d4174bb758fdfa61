#include "dataloader/loader/registry.hpp"

namespace dataloader {

loader_registry::registration&
loader_registry::registration::operator=(registration&& o) noexcept {
  if (this != &o) {
    reset();
    registry_ = o.registry_;
    id_ = o.id_;
    o.registry_ = nullptr;
  }
  return *this;
}

void loader_registry::registration::reset() noexcept {
  if (registry_ != nullptr) registry_->remove(id_);
  registry_ = nullptr;
}

loader_registry::registration loader_registry::add(
    std::string name, std::shared_ptr<const detail::loader_counters> counters) {
  std::lock_guard lock(mutex_);
  const auto id = next_id_++;
  retired_.try_emplace(name);  // the name is reported from now on, even at zero
  live_.emplace(id, live_entry{std::move(name), std::move(counters)});
  return registration(this, id);
}

void loader_registry::remove(std::uint64_t id) noexcept {
  std::lock_guard lock(mutex_);
  auto it = live_.find(id);
  if (it == live_.end()) return;
  retired_[it->second.name] += it->second.counters->snapshot();
  live_.erase(it);
}

std::map<std::string, loader_stats> loader_registry::snapshot() const {
  std::lock_guard lock(mutex_);
  auto totals = retired_;
  for (const auto& [id, entry] : live_) totals[entry.name] += entry.counters->snapshot();
  return totals;
}

}  // namespace dataloader
