// What the Zipf load generator (zipf_load.cpp) decides without a socket: which user a
// request is for, what an HTTP answer's head says, where the top-level "profile" of a
// prefetch answer is, and whether a read is older than a write acknowledged before the
// read was sent. Kept apart so that tests/bench/load_checks_test.cpp can check it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

namespace bench::load {

// Ranks 1..n drawn with P(k) = k^-s / H(n, s), in O(1) per draw: Walker's alias method
// (Vose's construction). Exact, unlike a quantized inverse CDF: the tail keeps its share.
class zipf_sampler {
 public:
  zipf_sampler(std::size_t n, double s) : keep_(n), alias_(n) {
    double total = 0;
    for (std::size_t k = 1; k <= n; ++k) total += std::pow(static_cast<double>(k), -s);
    std::vector<std::size_t> small, large;
    for (std::size_t i = 0; i < n; ++i) {
      keep_[i] = static_cast<double>(n) * std::pow(static_cast<double>(i + 1), -s) / total;
      alias_[i] = i;
      (keep_[i] < 1 ? small : large).push_back(i);
    }
    // Each column below 1 is topped up from one above 1, which may then fall below 1.
    while (!small.empty() && !large.empty()) {
      const std::size_t lo = small.back(), hi = large.back();
      small.pop_back();
      alias_[lo] = hi;
      keep_[hi] -= 1 - keep_[lo];
      if (keep_[hi] < 1) {
        large.pop_back();
        small.push_back(hi);
      }
    }
    for (std::size_t i : small) keep_[i] = 1;  // rounding leftovers
    for (std::size_t i : large) keep_[i] = 1;
  }

  template <class Rng>
  std::size_t operator()(Rng& rng) const {
    const std::size_t column = std::uniform_int_distribution<std::size_t>(0, keep_.size() - 1)(rng);
    const bool kept = std::uniform_real_distribution<double>(0, 1)(rng) < keep_[column];
    return (kept ? column : alias_[column]) + 1;
  }

  // The probability the table gives rank k: its own column's share plus what other
  // columns hand to it. Equals k^-s / H(n, s) up to rounding.
  double probability(std::size_t rank) const {
    const std::size_t i = rank - 1;
    double p = keep_[i];
    for (std::size_t j = 0; j < keep_.size(); ++j)
      if (alias_[j] == i && j != i) p += 1 - keep_[j];
    return p / static_cast<double>(keep_.size());
  }

 private:
  std::vector<double> keep_;        // column i keeps rank i + 1 with this probability
  std::vector<std::size_t> alias_;  // ...and gives alias_[i] + 1 otherwise
};

// The parts of an HTTP/1.1 answer's head the generator uses.
struct reply_head {
  int status = 0;
  std::size_t content_length = 0;
  std::string_view lsn;  // Dataloader-LSN, empty when absent
};

inline bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// `head` is the status line and header lines, up to and without the blank line. Empty
// when the status line is not HTTP/1.x or a Content-Length is malformed; an answer
// without Content-Length has an empty body (the service never sends chunked answers).
inline std::optional<reply_head> parse_reply_head(std::string_view head) {
  reply_head r;
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ') return std::nullopt;
  for (std::size_t i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return std::nullopt;
    r.status = r.status * 10 + (head[i] - '0');
  }
  std::size_t line = head.find("\r\n");
  while (line != std::string_view::npos) {
    line += 2;
    std::size_t end = head.find("\r\n", line);
    std::string_view h = head.substr(line, end == std::string_view::npos ? std::string_view::npos : end - line);
    line = end;
    const std::size_t colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (equal_ignoring_case(h.substr(0, colon), "content-length")) {
      if (value.empty() || value.size() > 12) return std::nullopt;
      std::size_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::size_t>(c - '0');
      }
      r.content_length = n;
    } else if (equal_ignoring_case(h.substr(0, colon), "dataloader-lsn")) {
      r.lsn = value;
    }
  }
  return r;
}

// A member of a JSON document's top-level object: absent, null, a string (its text as
// written, escapes not undone), or any other value.
struct json_member {
  enum kind_type { absent, null, string, other } kind = absent;
  std::string_view text;
};

// Finds `key` among the members of the top-level object of `json` without building the
// document: nested values (the onboarding state may hold a "profile" of its own) are
// skipped whole. Empty when `json` is not an object this scanner can walk.
inline std::optional<json_member> top_level_member(std::string_view json, std::string_view key) {
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < json.size() && (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t')) ++i;
  };
  // At an opening quote: moves past the closing one and gives the text between.
  const auto read_string = [&]() -> std::optional<std::string_view> {
    const std::size_t begin = ++i;
    for (; i < json.size(); ++i) {
      if (json[i] == '\\') {
        ++i;
      } else if (json[i] == '"') {
        return json.substr(begin, i++ - begin);
      }
    }
    return std::nullopt;
  };
  // At the start of a member's value: moves to the ',' or '}' after it.
  const auto skip_value = [&]() -> bool {
    int depth = 0;
    while (i < json.size()) {
      const char c = json[i];
      if (c == '"') {
        if (!read_string()) return false;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) return true;
        --depth;
      } else if (c == ',' && depth == 0) {
        return true;
      }
      ++i;
    }
    return false;
  };
  skip_space();
  if (i >= json.size() || json[i] != '{') return std::nullopt;
  ++i;
  skip_space();
  if (i < json.size() && json[i] == '}') return json_member{};
  for (;;) {
    skip_space();
    if (i >= json.size() || json[i] != '"') return std::nullopt;
    const auto name = read_string();
    if (!name) return std::nullopt;
    skip_space();
    if (i >= json.size() || json[i] != ':') return std::nullopt;
    ++i;
    skip_space();
    if (*name == key) {
      if (json.substr(i, 4) == "null") return json_member{json_member::null, {}};
      if (i < json.size() && json[i] == '"') {
        const auto text = read_string();
        if (!text) return std::nullopt;
        return json_member{json_member::string, *text};
      }
      return json_member{json_member::other, {}};
    }
    if (!skip_value()) return std::nullopt;
    skip_space();
    if (i >= json.size()) return std::nullopt;
    if (json[i] == '}') return json_member{};
    if (json[i] != ',') return std::nullopt;
    ++i;
  }
}

// The value the generator writes: "<run>-<version>". The run tells this run's writes from
// what earlier runs left in the database; versions count up across the run, and a user's
// writes never overlap (the generator keeps at most one in flight per user), so a user's
// versions commit in the order they were acknowledged.
inline std::optional<std::uint64_t> written_version(std::string_view value, std::string_view run) {
  if (value.size() <= run.size() + 1 || value.substr(0, run.size()) != run || value[run.size()] != '-')
    return std::nullopt;
  std::uint64_t v = 0;
  for (char c : value.substr(run.size() + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// The version of this run that a read's profile holds; 0 for anything else (null, absent,
// a seeded value, an earlier run's), which is older than every write of this run.
inline std::uint64_t version_read(const json_member& profile, std::string_view run) {
  if (profile.kind != json_member::string) return 0;
  return written_version(profile.text, run).value_or(0);
}

// A read of a user sent when `acknowledged` was the newest version acknowledged for it (0:
// none yet this run) is stale when the profile it returned is older than that version,
// or is not one this run wrote at all.
inline bool stale(const json_member& profile, std::string_view run, std::uint64_t acknowledged) {
  return version_read(profile, run) < acknowledged;
}

}  // namespace bench::load
