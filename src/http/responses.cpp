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

// The prefetch answer (keys in nlohmann's sorted order), appended to `out`. With `layout`,
// also where its parts end: the head at recent_memories' '[', then each memory.
struct prefetch_layout {
  std::size_t head_end = 0;
  std::vector<std::uint32_t>* memory_ends = nullptr;
};

void append_prefetch(std::string& out, const store::prefetch_result& r, prefetch_layout* layout) {
  json_writer w(out);
  w.begin_object();
  w.key("memory_count").integer(r.memory_count);
  w.key("onboarding").optional(r.onboarding);
  w.key("profile").optional(r.profile);
  w.key("recent_memories").begin_array();
  if (layout) layout->head_end = out.size();
  for (const auto& m : r.recent_memories) {
    write_memory(w, m);
    if (layout) layout->memory_ends->push_back(static_cast<std::uint32_t>(out.size()));
  }
  w.end_array();
  w.key("user_id").string(r.user_id);
  w.end_object();
}

}  // namespace

std::string prefetch_body(const store::prefetch_result& r) {
  std::string body;
  body.reserve(512 + r.recent_memories.size() * 256);
  append_prefetch(body, r, nullptr);
  return body;
}

prefetch_text::prefetch_text(const store::prefetch_result& snapshot) {
  ends_.reserve(snapshot.recent_memories.size());
  prefetch_layout layout{0, &ends_};
  append_prefetch(text_, snapshot, &layout);
  // The text is kept as long as its snapshot: left to the string's doubling, its spare
  // capacity averaged 1,600 bytes per entry (about 160 MB with 100,000 users cached).
  text_.shrink_to_fit();
  head_end_ = layout.head_end;
  tail_begin_ = ends_.empty() ? head_end_ : ends_.back();
}

std::string prefetch_text::body(std::size_t memories) const {
  // The memories' commas precede each one after the first, so a prefix of them is whole.
  const std::size_t prefix = memories == 0 ? head_end_ : ends_.at(memories - 1);
  std::string body;
  body.reserve(prefix + text_.size() - tail_begin_);
  body.append(text_, 0, prefix).append(text_, tail_begin_);
  return body;
}

std::size_t prefetch_text::bytes() const noexcept {
  return sizeof(*this) + text_.capacity() + ends_.capacity() * sizeof(std::uint32_t);
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
