#include "responses.hpp"

#include "json_writer.hpp"

namespace dataloader::http::detail {

using json = nlohmann::json;

response make_json_text(unsigned status, std::string body, unsigned version, bool keep_alive) {
  response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response make_json(unsigned status, const json& body, unsigned version, bool keep_alive) {
  return make_json_text(status, body.dump(-1, ' ', false, json::error_handler_t::replace), version, keep_alive);
}

namespace {

void write_memory(json_writer& w, const store::memory& m) {
  w.begin_object();
  w.key("category").string(m.category);
  w.key("created_at").timestamp(m.created_at);
  w.key("key").string(m.key);
  w.key("updated_at").timestamp(m.updated_at);
  w.key("user_id").string(m.user_id);
  w.key("value").string(m.value);
  w.end_object();
}

void write_memories(json_writer& w, std::span<const store::memory> ms) {
  w.begin_array();
  for (const auto& m : ms) write_memory(w, m);
  w.end_array();
}

}  // namespace

std::string memories_body(const store::memory_page& page) {
  std::string body;
  json_writer w(body);
  w.begin_object().key("memories");
  write_memories(w, page.memories);
  w.key("next").optional(page.next);
  w.end_object();
  return body;
}

namespace {

// The prefetch answer's three parts (keys in nlohmann's sorted order): the head up to
// recent_memories' '[', the memories, and the tail from its ']'.
void append_prefetch_head(std::string& out, const store::prefetch_result& r) {
  json_writer w(out);
  w.begin_object();
  w.key("memory_count").integer(r.memory_count);
  w.key("onboarding").optional(r.onboarding);
  w.key("profile").optional(r.profile);
  w.key("recent_memories");
  out.push_back('[');
}

void append_memory(std::string& out, const store::memory& m) {
  json_writer w(out);
  write_memory(w, m);
}

void append_prefetch_tail(std::string& out, const store::prefetch_result& r) {
  out.append("],\"user_id\":");
  append_json_string(out, r.user_id);
  out.push_back('}');
}

}  // namespace

std::string prefetch_body(const store::prefetch_result& r, std::span<const store::memory> recent) {
  std::string body;
  body.reserve(512 + recent.size() * 256);
  append_prefetch_head(body, r);
  for (std::size_t i = 0; i < recent.size(); ++i) {
    if (i > 0) body.push_back(',');
    append_memory(body, recent[i]);
  }
  append_prefetch_tail(body, r);
  return body;
}

prefetch_text::prefetch_text(const store::prefetch_result& snapshot) {
  append_prefetch_head(head_, snapshot);
  ends_.reserve(snapshot.recent_memories.size());
  for (const auto& m : snapshot.recent_memories) {
    if (!ends_.empty()) memories_.push_back(',');
    append_memory(memories_, m);
    ends_.push_back(static_cast<std::uint32_t>(memories_.size()));
  }
  append_prefetch_tail(tail_, snapshot);
}

std::string prefetch_text::body(std::size_t memories) const {
  const std::size_t n = memories == 0 ? 0 : ends_.at(memories - 1);
  std::string body;
  body.reserve(head_.size() + n + tail_.size());
  body.append(head_).append(memories_, 0, n).append(tail_);
  return body;
}

std::size_t prefetch_text::bytes() const noexcept {
  return sizeof(*this) + head_.capacity() + memories_.capacity() + ends_.capacity() * sizeof(std::uint32_t) +
         tail_.capacity();
}

std::string search_body(const store::search_results& results) {
  std::string body;
  json_writer w(body);
  w.begin_object().key("results").begin_object();
  for (const auto& [category, ms] : results) {
    w.key(category);
    write_memories(w, ms);
  }
  w.end_object().end_object();
  return body;
}

}  // namespace dataloader::http::detail
