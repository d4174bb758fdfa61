#include "json_writer.hpp"

#include <charconv>

namespace dataloader::http::detail {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    // Runs of bytes that need no escaping are copied at once.
    std::size_t run = i;
    while (run < s.size()) {
      const auto c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const auto n = utf8_sequence(s, i)) {
        out.append(s.data() + i, n);
        i += n;
      } else {
        out.append("\xEF\xBF\xBD");  // U+FFFD for the invalid byte
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(u, sizeof u);
      }
    }
    ++i;
  }
  out.push_back('"');
}

void json_writer::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) out_.push_back(',');
    has_element_.back() = true;
  }
}

json_writer& json_writer::open(char bracket) {
  separate();
  out_.push_back(bracket);
  has_element_.push_back(false);
  return *this;
}

json_writer& json_writer::close(char bracket) {
  out_.push_back(bracket);
  has_element_.pop_back();
  return *this;
}

json_writer& json_writer::key(std::string_view name) {
  separate();
  append_json_string(out_, name);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

json_writer& json_writer::string(std::string_view s) {
  separate();
  append_json_string(out_, s);
  return *this;
}

json_writer& json_writer::integer(std::int64_t v) {
  separate();
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

json_writer& json_writer::boolean(bool v) {
  separate();
  out_.append(v ? "true" : "false");
  return *this;
}

json_writer& json_writer::null() {
  separate();
  out_.append("null");
  return *this;
}

json_writer& json_writer::timestamp(dataloader::timestamp t) {
  separate();
  out_.push_back('"');
  append_rfc3339(out_, t);
  out_.push_back('"');
  return *this;
}

json_writer& json_writer::value(const nlohmann::json& v) {
  separate();
  out_.append(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return *this;
}

}  // namespace dataloader::http::detail
