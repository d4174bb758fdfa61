// Parameter encoding and result decoding, without a server.
#include "dataloader/pg/lsn.hpp"
#include "dataloader/pg/sqlstate.hpp"
#include "dataloader/pg/statement.hpp"
#include "dataloader/pg/types.hpp"

#include <doctest/doctest.h>


using namespace dataloader::pg;

TEST_CASE("text arrays quote every element") {
  CHECK(encode_text_array(std::vector<std::string>{}) == "{}");
  CHECK(encode_text_array(std::vector<std::string>{"a", ""}) == R"({"a",""})");
  CHECK(encode_text_array(std::vector<std::string>{R"(q"b\s)", "NULL", "a,b", "{x}"}) == R"({"q\"b\\s","NULL","a,b","{x}"})");
}

TEST_CASE("text arrays decode what PostgreSQL prints") {
  auto v = decode_text_array(R"({a,"b c","q\"x","NULL",""})");
  REQUIRE(v);
  CHECK(*v == std::vector<std::string>{"a", "b c", "q\"x", "NULL", ""});
  CHECK(decode_text_array("{}")->empty());
  CHECK(!decode_text_array("{a,NULL}"));
  CHECK(!decode_text_array("not an array"));
}

TEST_CASE("params record the first invalid parameter by position") {
  params p(std::string("ok"), 5, std::string("bad\xff"));
  CHECK(p.size() == 3);
  CHECK(p.problem() == "parameter $3 is not valid UTF-8 (at byte offset 3)");
  std::vector<std::string> items{"fine", std::string("x\0", 2)};
  params q(items);
  CHECK(q.problem() == "parameter $1 element 1 contains a NUL byte at offset 1");
}

TEST_CASE("LSN text form: exactly what PostgreSQL's pg_lsn accepts, printed as PostgreSQL prints it") {
  using dataloader::pg::lsn;
  using dataloader::pg::parse_lsn;
  CHECK(parse_lsn("0/0") == lsn{0});
  CHECK(parse_lsn("16/B374D848") == lsn{0x16'B374D848});
  CHECK(parse_lsn("16/b374d848") == lsn{0x16'B374D848});
  CHECK(parse_lsn("FFFFFFFF/FFFFFFFF") == lsn{UINT64_MAX});
  CHECK(parse_lsn("00000001/00000002") == lsn{0x1'00000002});
  for (const char* bad : {"", "/", "1/", "/1", "123456789/0", "0/123456789", "1/2 ", " 1/2", "+1/2", "-1/2", "1//2",
                          "G/1", "1/2/3", "0x1/2", "1\0/2"})
    CHECK_MESSAGE(!parse_lsn(bad), bad);
  CHECK(!parse_lsn(std::string_view("1/2\0", 4)));
  CHECK(dataloader::pg::to_string(lsn{0}) == "0/0");
  CHECK(dataloader::pg::to_string(lsn{0x16'B374D848}) == "16/B374D848");
  CHECK(dataloader::pg::to_string(lsn{UINT64_MAX}) == "FFFFFFFF/FFFFFFFF");
  CHECK(lsn{1} < lsn{0x1'00000000});
}

TEST_CASE("transient server errors: what may succeed if simply sent again") {
  for (auto s : {sqlstate::serialization_failure, sqlstate::deadlock_detected, sqlstate::query_canceled,
                 sqlstate::admin_shutdown, sqlstate::crash_shutdown, sqlstate::cannot_connect_now,
                 sqlstate::too_many_connections})
    CHECK_MESSAGE(is_transient(make_error_code(s)), sqlstate_of(make_error_code(s)));
  for (auto s : {sqlstate::unique_violation, sqlstate::check_violation, sqlstate::read_only_sql_transaction})
    CHECK_MESSAGE(!is_transient(make_error_code(s)), sqlstate_of(make_error_code(s)));
  CHECK(!is_transient(sqlstate_error("42P01")));  // undefined_table: a bug, not a hiccup
  CHECK(!is_transient(dataloader::errc::timeout));
}
