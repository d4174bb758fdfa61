#include "dataloader/store/migrations.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <set>

namespace dataloader::store {

namespace asio = boost::asio;

namespace {

// Every committed change to a user's rows raises a notification on dataloader_invalidate
// naming the users (README: "Cache coherence"): one per statement, not per row
// (statement-level triggers over transition tables), split so that each payload stays
// below PostgreSQL's 8,000-byte limit. A user id too long to fit (only possible when
// written by another client: the service takes at most 256 bytes, 1,536 as JSON) or a
// TRUNCATE names no users but "all". The payload is
//   {"table" : "memories", "users" : ["user1","user2"]}   or   {"table" : "memories", "all" : true}
// (JSON: its whitespace is not part of the format).
// A transition table may only be named in a trigger for a single event, so there are
// three per table (and one for TRUNCATE, which has none).
//
// Most statements name a few short ids: their payload, built at once, is sent as it is
// when it is at most 1,600 bytes (then no id is too long and it is one chunk); only
// longer ones take the chunking query. On a 5-row upsert (EXPLAIN ANALYZE, warm session)
// the update trigger took 75 us with the chunking query and takes 24 us without, where
// the statement itself takes about 80 us.
constexpr const char* notify_function =
    "CREATE OR REPLACE FUNCTION dataloader_notify_invalidate() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  ids text[];\n"
    "  payload text;\n"
    "BEGIN\n"
    "  IF TG_OP = 'TRUNCATE' THEN\n"
    "    PERFORM pg_notify('dataloader_invalidate', json_build_object('table', TG_TABLE_NAME, 'all', true)::text);\n"
    "    RETURN NULL;\n"
    "  ELSIF TG_OP = 'INSERT' THEN\n"
    "    SELECT array_agg(DISTINCT user_id) INTO ids FROM new_rows;\n"
    "  ELSIF TG_OP = 'DELETE' THEN\n"
    "    SELECT array_agg(DISTINCT user_id) INTO ids FROM old_rows;\n"
    "  ELSE\n"
    "    SELECT array_agg(DISTINCT user_id) INTO ids\n"
    "    FROM (SELECT user_id FROM new_rows UNION ALL SELECT user_id FROM old_rows) changed;\n"
    "  END IF;\n"
    "  IF ids IS NULL THEN RETURN NULL; END IF;\n"
    "  payload := json_build_object('table', TG_TABLE_NAME, 'users', ids)::text;\n"
    "  IF octet_length(payload) <= 1600 THEN\n"
    "    PERFORM pg_notify('dataloader_invalidate', payload);\n"
    "    RETURN NULL;\n"
    "  END IF;\n"
    "  FOR payload IN\n"
    "    SELECT CASE WHEN max(octet_length(j)) > 1600\n"
    "             THEN json_build_object('table', TG_TABLE_NAME, 'all', true)::text\n"
    "             ELSE json_build_object('table', TG_TABLE_NAME, 'users', json_agg(u ORDER BY n))::text END\n"
    "    FROM (SELECT u, n, j, sum(octet_length(j) + 2) OVER (ORDER BY n) / 6000 AS chunk\n"
    "          FROM (SELECT u, n, to_json(u)::text AS j FROM unnest(ids) WITH ORDINALITY AS t(u, n)) e) c\n"
    "    GROUP BY chunk ORDER BY chunk\n"
    "  LOOP\n"
    "    PERFORM pg_notify('dataloader_invalidate', payload);\n"
    "  END LOOP;\n"
    "  RETURN NULL;\n"
    "END\n"
    "$fn$";

std::vector<std::string> invalidation_triggers() {
  std::vector<std::string> out{notify_function};
  for (const char* table : {"profiles", "memories", "onboarding"}) {
    const std::string on = std::string(" ON ") + table;
    const std::string run = " FOR EACH STATEMENT EXECUTE FUNCTION dataloader_notify_invalidate()";
    out.push_back("CREATE OR REPLACE TRIGGER dataloader_invalidate_insert AFTER INSERT" + on +
                  " REFERENCING NEW TABLE AS new_rows" + run);
    out.push_back("CREATE OR REPLACE TRIGGER dataloader_invalidate_update AFTER UPDATE" + on +
                  " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows" + run);
    out.push_back("CREATE OR REPLACE TRIGGER dataloader_invalidate_delete AFTER DELETE" + on +
                  " REFERENCING OLD TABLE AS old_rows" + run);
    out.push_back("CREATE OR REPLACE TRIGGER dataloader_invalidate_truncate AFTER TRUNCATE" + on + run);
  }
  return out;
}

}  // namespace

const std::vector<migration>& migrations() {
  static const std::vector<migration> all{
      {1, "profiles, memories, onboarding",
       {"CREATE TABLE IF NOT EXISTS profiles ("
        "  user_id text PRIMARY KEY, profile text NOT NULL,"
        "  updated_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE IF NOT EXISTS memories ("
        "  user_id text NOT NULL, category text NOT NULL, key text NOT NULL, value text NOT NULL,"
        "  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),"
        "  PRIMARY KEY (user_id, category, key))",
        "CREATE INDEX IF NOT EXISTS memories_user_recent ON memories (user_id, updated_at DESC)",
        "CREATE TABLE IF NOT EXISTS onboarding ("
        "  user_id text PRIMARY KEY, state jsonb NOT NULL,"
        "  updated_at timestamptz NOT NULL DEFAULT now())"}},
      // Search and category filters walk one category of one user newest first.
      {2, "memories by user, category, recency",
       {"CREATE INDEX IF NOT EXISTS memories_user_category_recent "
        "ON memories (user_id, category, updated_at DESC)"}},
      // Per-user reads cost PostgreSQL index descents, and a descent is mostly key
      // comparisons: "C" compares bytes (memcmp) where a libc locale calls strcoll on
      // copies. For UTF-8 the order is code point order, the same as C.UTF-8's. Changing
      // only the collation keeps the table (no rewrite) and rebuilds its indexes.
      // Profile and onboarding lookups by one user id take hash indexes: one bucket page
      // instead of a walk down the tree (the primary keys stay for upserts and ANY()).
      // Changing a column's type drops its statistics: without ANALYZE the planner
      // guesses, and the prefetch statement ran 50 times slower on 100,000 users.
      {3, "byte-order keys, hash lookups of profiles and onboarding",
       {"ALTER TABLE memories ALTER COLUMN user_id TYPE text COLLATE \"C\", "
        "ALTER COLUMN category TYPE text COLLATE \"C\", ALTER COLUMN key TYPE text COLLATE \"C\"",
        "ALTER TABLE profiles ALTER COLUMN user_id TYPE text COLLATE \"C\"",
        "ALTER TABLE onboarding ALTER COLUMN user_id TYPE text COLLATE \"C\"",
        "CREATE INDEX IF NOT EXISTS profiles_user_hash ON profiles USING hash (user_id)",
        "CREATE INDEX IF NOT EXISTS onboarding_user_hash ON onboarding USING hash (user_id)",
        "ANALYZE memories, profiles, onboarding"}},
      {4, "notifications of changed users on dataloader_invalidate", invalidation_triggers()},
      // Databases that ran migration 4 before the notifying function took its short path.
      {5, "short notifications without the chunking query", {notify_function}},
  };
  return all;
}

namespace {

// Any number that other applications are unlikely to lock: "dl" + schema.
constexpr std::int64_t advisory_key = 0x646c736368656d61;

const pg::statement lock_st{"migrate_lock", "SELECT pg_advisory_lock($1::int8)"};
const pg::statement unlock_st{"migrate_unlock", "SELECT pg_advisory_unlock($1::int8)"};
const pg::statement table_st{"migrate_table",
    "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())"};
const pg::statement applied_st{"migrate_applied", "SELECT version FROM schema_migrations"};
const pg::statement record_st{"migrate_record", "INSERT INTO schema_migrations (version, name) VALUES ($1::int4, $2::text)"};

failure migration_failure(error_code ec, const diagnostics& d, const std::string& what) {
  return {ec, what + ": " + describe(ec, d)};
}

}  // namespace

asio::awaitable<result<int>> detail::migrate(pg::connection_pool& pool, int up_to_version) {
  diagnostics diag;
  auto [ec, conn] = co_await pool.async_acquire(std::chrono::seconds(30), diag, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return migration_failure(ec, diag, "migrate: no connection");
  auto run = [&](const pg::statement& st, pg::params p) -> asio::awaitable<std::tuple<error_code, pg::result>> {
    co_return co_await conn.async_query(st, std::move(p), {}, diag, asio::as_tuple(asio::use_awaitable));
  };
  if (auto [e, r] = co_await run(lock_st, pg::params(advisory_key)); e) co_return migration_failure(e, diag, "migrate: advisory lock");
  int applied = 0;
  std::optional<failure> problem;
  if (auto [e, r] = co_await run(table_st, {}); e) {
    problem = migration_failure(e, diag, "migrate: schema_migrations");
  } else if (auto [e2, done] = co_await run(applied_st, {}); e2) {
    problem = migration_failure(e2, diag, "migrate: reading schema_migrations");
  } else {
    std::set<int> have;
    for (std::size_t i = 0; i < done.rows(); ++i) have.insert(done.get<int>(i, 0).value_or(0));
    // Statements live as long as the group that uses them.
    std::deque<pg::statement> statements;
    for (const auto& m : migrations()) {
      if (have.contains(m.version) || m.version > up_to_version) continue;
      std::vector<pg::query> group;
      for (std::size_t i = 0; i < m.statements.size(); ++i) {
        statements.push_back({"migration_" + std::to_string(m.version) + "_" + std::to_string(i), m.statements[i]});
        group.push_back({&statements.back(), {}});
      }
      group.push_back({&record_st, pg::params(m.version, m.name)});
      auto [e3, rs] = co_await conn.async_pipeline(std::move(group), {}, diag, asio::as_tuple(asio::use_awaitable));
      if (e3) {
        problem = migration_failure(e3, diag, "migration " + std::to_string(m.version) + " (" + m.name + ")");
        break;
      }
      ++applied;
    }
  }
  co_await run(unlock_st, pg::params(advisory_key));
  if (problem) co_return *problem;
  co_return applied;
}

}  // namespace dataloader::store
