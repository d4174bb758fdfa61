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

std::string prefetch_body(const store::prefetch_result& r, std::span<const store::memory> recent) {
  std::string body;
  body.reserve(512 + recent.size() * 256);
  json_writer w(body);
  w.begin_object();
  w.key("memory_count").integer(r.memory_count);
  w.key("onboarding").optional(r.onboarding);
  w.key("profile").optional(r.profile);
  w.key("recent_memories");
  write_memories(w, recent);
  w.key("user_id").string(r.user_id);
  w.end_object();
  return body;
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
