#include "dataloader/json.hpp"

#include <utility>
#include <vector>

namespace dataloader {
namespace {

using json = nlohmann::json;

// Builds the tree from SAX events with an explicit stack of open containers, and stops
// the parser (returns false) at the first level past the limit.
class bounded_builder {
 public:
  bounded_builder(json& root, std::size_t max_depth) : root_(root), max_depth_(max_depth) {}

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(json(v)); }
  bool string(json::string_t& v) { return put(json(std::move(v))); }
  bool binary(json::binary_t& v) { return put(json::binary(std::move(v))); }

  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    if (open_.size() == 1) top_key_ = k;
    key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_.message = "malformed JSON at byte " + std::to_string(position) + ": " + without_prefix(e.what());
    return false;
  }

  const json_error& error() const noexcept { return error_; }

 private:
  // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> "...".
  static std::string without_prefix(const std::string& what) {
    const auto colon = what.find(": ");
    return colon == std::string::npos ? what : what.substr(colon + 2);
  }

  // Places `v` in the innermost open container (or as the root); returns where it went.
  json* place(json&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    return &(parent[key_] = std::move(v));
  }

  bool put(json&& v) {
    place(std::move(v));
    return true;
  }

  bool open(json&& container) {
    if (open_.size() + 1 > max_depth_) {
      error_.field = open_.empty() ? std::string() : top_key_;
      error_.message = "nested deeper than " + std::to_string(max_depth_) + " levels";
      return false;
    }
    open_.push_back(place(std::move(container)));
    return true;
  }

  bool close() {
    open_.pop_back();
    return true;
  }

  json& root_;
  std::size_t max_depth_;
  std::vector<json*> open_;  // pointers stay valid: a parent never grows while a child is open
  json::string_t key_;
  std::string top_key_;
  json_error error_;
};

}  // namespace

std::optional<nlohmann::json> parse_json(std::string_view text, json_error& error, std::size_t max_depth) {
  json root;
  bounded_builder builder(root, max_depth);
  if (!json::sax_parse(text, &builder, json::input_format_t::json, true)) {
    error = builder.error();
    if (error.message.empty()) error.message = "malformed JSON";
    return std::nullopt;
  }
  return root;
}

bool json_depth_within(const nlohmann::json& value, std::size_t max_depth) {
  std::vector<std::pair<const json*, std::size_t>> todo{{&value, 0}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth + 1 > max_depth) return false;
    for (const auto& child : *v) todo.emplace_back(&child, depth + 1);
  }
  return true;
}

}  // namespace dataloader
