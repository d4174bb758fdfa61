// The Zipf load generator's decisions (bench/http/load_checks.hpp): the benchmark's
// verdict of "0 stale reads" is only as good as these.
#include "http/load_checks.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

using namespace bench::load;

TEST_CASE("the alias table gives every rank its Zipf share") {
  for (double s : {0.8, 1.0, 1.2}) {
    const std::size_t n = 1000;
    const zipf_sampler sampler(n, s);
    double h = 0, sum = 0;
    for (std::size_t k = 1; k <= n; ++k) h += std::pow(static_cast<double>(k), -s);
    for (std::size_t k = 1; k <= n; ++k) {
      const double p = sampler.probability(k);
      CHECK(p == doctest::Approx(std::pow(static_cast<double>(k), -s) / h).epsilon(1e-9));
      sum += p;
    }
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-9));
  }
}

TEST_CASE("draws follow the shares and stay within the ranks") {
  const zipf_sampler sampler(100, 1.0);
  std::mt19937_64 rng(42);
  std::vector<int> seen(101);
  const int draws = 400000;
  for (int i = 0; i < draws; ++i) {
    const std::size_t k = sampler(rng);
    REQUIRE(k >= 1);
    REQUIRE(k <= 100);
    ++seen[k];
  }
  // Rank 1 holds 1 / H(100) = 19.3 %; the sampling error at 400,000 draws is below 0.1 %.
  for (std::size_t k : {1, 2, 10, 100})
    CHECK(static_cast<double>(seen[k]) / draws == doctest::Approx(sampler.probability(k)).epsilon(0.05));
  const zipf_sampler one(1, 1.0);
  CHECK(one(rng) == 1);
}

TEST_CASE("an answer's head gives its status, body length and LSN") {
  auto h = parse_reply_head("HTTP/1.1 200 OK\r\ncontent-length: 17\r\nDataloader-LSN: 0/16B3748\r\nServer: x");
  REQUIRE(h);
  CHECK(h->status == 200);
  CHECK(h->content_length == 17);
  CHECK(h->lsn == "0/16B3748");
  h = parse_reply_head("HTTP/1.1 503 Service Unavailable\r\nContent-Length:0");
  REQUIRE(h);
  CHECK(h->status == 503);
  CHECK(h->content_length == 0);
  CHECK(h->lsn.empty());
  CHECK_FALSE(parse_reply_head("HTTP/2 200\r\nContent-Length: 1"));
  CHECK_FALSE(parse_reply_head("HTTP/1.1 2x0 OK"));
  CHECK_FALSE(parse_reply_head("HTTP/1.1 200 OK\r\nContent-Length: 12a"));
  CHECK_FALSE(parse_reply_head("HTTP/1.1 200 OK\r\nContent-Length: "));
}

TEST_CASE("the top-level profile is found past nested members of the same name") {
  const std::string_view prefetch =
      R"({"memory_count":2,"onboarding":{"profile":"nested","steps":[{"profile":null},"}"]},)"
      R"("profile":"7-12","recent_memories":[{"text":"\"profile\":\"x\""}],"user_id":"user1"})";
  auto m = top_level_member(prefetch, "profile");
  REQUIRE(m);
  CHECK(m->kind == json_member::string);
  CHECK(m->text == "7-12");
  m = top_level_member(prefetch, "user_id");
  REQUIRE(m);
  CHECK(m->text == "user1");
  m = top_level_member(R"({"onboarding":null, "profile" : null})", "profile");
  REQUIRE(m);
  CHECK(m->kind == json_member::null);
  m = top_level_member(R"({"memory_count":3})", "profile");
  REQUIRE(m);
  CHECK(m->kind == json_member::absent);
  m = top_level_member(R"({"profile":3})", "profile");
  REQUIRE(m);
  CHECK(m->kind == json_member::other);
  CHECK(top_level_member("{}", "profile")->kind == json_member::absent);
  CHECK(top_level_member(R"({"profile":"a\"b"})", "profile")->text == R"(a\"b)");
  CHECK_FALSE(top_level_member("[1]", "profile"));
  CHECK_FALSE(top_level_member(R"({"a":{"b":1})", "profile"));
  CHECK_FALSE(top_level_member(R"({"profile":"unterminated)", "profile"));
}

TEST_CASE("a read is stale when it is older than the write acknowledged before it was sent") {
  const auto profile = [](std::string_view text) { return json_member{json_member::string, text}; };
  CHECK(written_version("41-7", "41") == 7u);
  CHECK_FALSE(written_version("410-7", "41"));
  CHECK_FALSE(written_version("41-", "41"));
  CHECK_FALSE(written_version("41-7x", "41"));
  // Nothing acknowledged yet: any answer is as new as the run's writes require.
  CHECK_FALSE(stale(json_member{json_member::null, {}}, "41", 0));
  CHECK_FALSE(stale(profile("seeded text"), "41", 0));
  // After version 7 was acknowledged: 7 or a newer write in flight, nothing older.
  CHECK_FALSE(stale(profile("41-7"), "41", 7));
  CHECK_FALSE(stale(profile("41-9"), "41", 7));
  CHECK(stale(profile("41-6"), "41", 7));
  CHECK(stale(profile("99-7"), "41", 7));  // an earlier run's value
  CHECK(stale(profile("seeded text"), "41", 7));
  CHECK(stale(json_member{json_member::null, {}}, "41", 7));
  CHECK(stale(json_member{}, "41", 7));
}
