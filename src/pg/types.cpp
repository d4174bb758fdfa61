#include "dataloader/pg/types.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace dataloader::pg {

std::string text_problem(std::string_view s) {
  std::size_t i = 0;
  const auto n = s.size();
  auto cont = [&](std::size_t k) {
    return k < n && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80;
  };
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return "contains a NUL byte at offset " + std::to_string(i);
    std::size_t len = 0;
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    bool ok = len > 0;
    for (std::size_t k = 1; ok && k < len; ++k) ok = cont(i + k);
    if (ok && len == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
    } else if (ok && len == 4) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);  // overlong, > U+10FFFF
    }
    if (!ok) return "is not valid UTF-8 (at byte offset " + std::to_string(i) + ")";
    i += len;
  }
  return {};
}

namespace {
void append_quoted(std::string& out, std::string_view item) {
  out += '"';
  for (char c : item) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}
}  // namespace

std::string encode_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    append_quoted(out, items[i]);
  }
  out += '}';
  return out;
}

std::optional<std::vector<std::string>> decode_text_array(std::string_view s) {
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return std::nullopt;
  std::vector<std::string> out;
  std::size_t i = 1;
  const std::size_t end = s.size() - 1;
  if (i == end) return out;
  while (true) {
    std::string item;
    if (s[i] == '"') {
      ++i;
      while (i < end && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < end) ++i;
        item += s[i++];
      }
      if (i >= end) return std::nullopt;
      ++i;  // closing quote
    } else {
      while (i < end && s[i] != ',') item += s[i++];
      if (item == "NULL") return std::nullopt;  // text[] with NULLs is not a vector<string>
    }
    out.push_back(std::move(item));
    if (i == end) return out;
    if (s[i] != ',') return std::nullopt;
    ++i;
  }
}

std::string format_rfc3339(timestamp t) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto secs = us / 1'000'000;
  auto frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

std::optional<timestamp> parse_timestamp(std::string_view s) {
  // YYYY-MM-DD[ T]HH:MM:SS[.f{1,6}][Z|(+|-)HH[:MM[:SS]]]
  auto num = [&](std::size_t pos, std::size_t len) -> std::optional<int> {
    if (pos + len > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t k = pos; k < pos + len; ++k) {
      if (s[k] < '0' || s[k] > '9') return std::nullopt;
      v = v * 10 + (s[k] - '0');
    }
    return v;
  };
  auto Y = num(0, 4), M = num(5, 2), D = num(8, 2), h = num(11, 2), m = num(14, 2), sec = num(17, 2);
  if (!Y || !M || !D || !h || !m || !sec || s[4] != '-' || s[7] != '-' ||
      (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  std::size_t i = 19;
  long long micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) micros *= 10;
  }
  long long offset = 0;  // seconds east of UTC
  if (i < s.size()) {
    if (s[i] == 'Z') {
      ++i;
    } else if (s[i] == '+' || s[i] == '-') {
      const int sign = s[i] == '+' ? 1 : -1;
      ++i;
      auto oh = num(i, 2);
      if (!oh) return std::nullopt;
      i += 2;
      int om = 0, os = 0;
      if (i < s.size() && s[i] == ':') {
        auto v = num(i + 1, 2);
        if (!v) return std::nullopt;
        om = *v;
        i += 3;
        if (i < s.size() && s[i] == ':') {
          auto w = num(i + 1, 2);
          if (!w) return std::nullopt;
          os = *w;
          i += 3;
        }
      }
      offset = sign * (*oh * 3600LL + om * 60LL + os);
    } else {
      return std::nullopt;
    }
  }
  if (i != s.size()) return std::nullopt;
  using namespace std::chrono;
  const auto days = sys_days(year{*Y} / month{static_cast<unsigned>(*M)} / day{static_cast<unsigned>(*D)});
  if (!(year{*Y} / month{static_cast<unsigned>(*M)} / day{static_cast<unsigned>(*D)}).ok()) return std::nullopt;
  const auto t = days + hours{*h} + minutes{*m} + seconds{*sec} + microseconds{micros} - seconds{offset};
  return time_point_cast<system_clock::duration>(t);
}

encoded param_traits<double>::encode(double v) {
  if (std::isnan(v)) return {std::string("NaN"), {}};
  if (std::isinf(v)) return {std::string(v > 0 ? "Infinity" : "-Infinity"), {}};
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return {std::string(buf, p), {}};
}

encoded param_traits<nlohmann::json>::encode(const nlohmann::json& j) {
  try {
    std::string text = j.dump();  // strict: throws on invalid UTF-8 in strings
    if (auto p = text_problem(text); !p.empty()) return {std::nullopt, std::move(p)};
    return {std::move(text), {}};
  } catch (const nlohmann::json::exception& e) {
    return {std::nullopt, std::string("is not serializable JSON: ") + e.what()};
  }
}

encoded param_traits<std::vector<std::string>>::encode(const std::vector<std::string>& items) {
  for (std::size_t i = 0; i < items.size(); ++i)
    if (auto p = text_problem(items[i]); !p.empty())
      return {std::nullopt, "element " + std::to_string(i) + " " + p};
  return {encode_text_array(items), {}};
}

std::optional<double> result_traits<double>::decode(std::string_view s) {
  if (s == "NaN") return std::nan("");
  if (s == "Infinity") return HUGE_VAL;
  if (s == "-Infinity") return -HUGE_VAL;
  double v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<nlohmann::json> result_traits<nlohmann::json>::decode(std::string_view s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace dataloader::pg
