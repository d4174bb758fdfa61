// Every statement the store sends. Values are always parameters; arrays travel as text[].
#pragma once

#include "dataloader/pg/statement.hpp"

namespace dataloader::store::detail::sql {

inline const pg::statement get_profiles{"store_get_profiles",
    "SELECT user_id, profile FROM profiles WHERE user_id = ANY($1::text[])"};

inline const pg::statement get_onboarding{"store_get_onboarding",
    "SELECT user_id, state::text FROM onboarding WHERE user_id = ANY($1::text[])"};

// Everything a prefetch needs about each user, for the whole batch in one statement (one
// snapshot): the N most recently updated memories (the limit travels per user, walking
// the (user_id, updated_at DESC) index), profile and onboarding state, memory count.
// Rows come per memory, newest first; the profile and onboarding state ride only on a
// user's first row (rn = 1, or the single row of a user without memories, rn NULL), so a
// large profile is not repeated N times. The count costs nothing when the page is not
// full: it is then the number of rows. Only a full page (rn = lim) runs count(*), on its
// last row (a CASE evaluates its subquery only for the rows that take that branch).
inline const pg::statement user_snapshots{"store_user_snapshots",
    "SELECT u.ord, CASE WHEN m.rn = u.lim THEN (SELECT count(*) FROM memories c WHERE c.user_id = u.user_id) END, "
    "  m.rn, "
    "  CASE WHEN m.rn IS NULL OR m.rn = 1 THEN p.profile END, "
    "  CASE WHEN m.rn IS NULL OR m.rn = 1 THEN o.state::text END, "
    "  m.category, m.key, m.value, m.created_at, m.updated_at "
    "FROM unnest($1::text[], $2::int4[]) WITH ORDINALITY AS u(user_id, lim, ord) "
    "LEFT JOIN profiles p ON p.user_id = u.user_id "
    "LEFT JOIN onboarding o ON o.user_id = u.user_id "
    "LEFT JOIN LATERAL (SELECT category, key, value, created_at, updated_at, "
    "    row_number() OVER (ORDER BY updated_at DESC, category, key) AS rn "
    "  FROM memories WHERE user_id = u.user_id ORDER BY updated_at DESC, category, key LIMIT u.lim) m ON true "
    "ORDER BY u.ord, m.rn"};

// Pages of memory listings, for a whole batch in one statement. Each listing travels with
// its filter (category '' = any; keys, an array literal, only when by_keys), the position
// it continues after ('infinity' for a first page) and its row limit. Keyset paging: the
// order is (updated_at DESC, category, key), unique per user; `updated_at <= after_t` is
// an index condition on memories_user_recent, so a page deep in the listing starts there
// instead of walking the pages before it; the tie-break on (category, key) filters only
// rows of the same instant. The index yields rows in updated_at order; WITH TIES keeps the
// rows sharing the last instant, so the page's order by (category, key) is the outer
// sort's and read_pages cuts each listing to its limit. (ORDER BY updated_at, category,
// key LIMIT n inside would sort the user's every remaining memory: the generic plan
// expects one row per user and picks a full sort over an incremental one.)
inline const pg::statement memory_pages{"store_memory_pages",
    "SELECT u.ord, m.category, m.key, m.value, m.created_at, m.updated_at "
    "FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], "
    "  $8::int4[]) WITH ORDINALITY AS u(user_id, category, by_keys, keys, after_t, after_c, after_k, lim, ord) "
    "CROSS JOIN LATERAL (SELECT category, key, value, created_at, updated_at FROM memories "
    "  WHERE user_id = u.user_id AND updated_at <= u.after_t "
    "    AND (updated_at < u.after_t OR (category, key) > (u.after_c, u.after_k)) "
    "    AND (u.category = '' OR category = u.category) "
    "    AND (NOT u.by_keys OR key = ANY(u.keys::text[])) "
    "  ORDER BY updated_at DESC FETCH FIRST (u.lim) ROWS WITH TIES) m "
    "ORDER BY u.ord, m.updated_at DESC, m.category, m.key"};

// clock_timestamp(): rows written by one statement still get distinct updated_at times.
inline const pg::statement save_memories{"store_save_memories",
    "INSERT INTO memories AS m (user_id, category, key, value, created_at, updated_at) "
    "SELECT u.user_id, u.category, u.key, u.value, clock_timestamp(), clock_timestamp() "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(user_id, category, key, value) "
    "ON CONFLICT (user_id, category, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"};

// An empty category means "in any category" (a real category is 1 to 256 bytes).
inline const pg::statement delete_memories{"store_delete_memories",
    "DELETE FROM memories m USING unnest($1::text[], $2::text[], $3::text[]) AS d(user_id, category, key) "
    "WHERE m.user_id = d.user_id AND m.key = d.key AND (d.category = '' OR m.category = d.category) "
    "RETURNING m.user_id, m.category, m.key"};

inline const pg::statement search{"store_search",
    "SELECT c.category, m.key, m.value, m.created_at, m.updated_at "
    "FROM unnest($2::text[]) WITH ORDINALITY AS c(category, ord) "
    "CROSS JOIN LATERAL (SELECT key, value, created_at, updated_at FROM memories "
    "  WHERE user_id = $1::text AND category = c.category ORDER BY updated_at DESC, key LIMIT $3::int4) m "
    "ORDER BY c.ord, m.updated_at DESC, m.key"};

inline const pg::statement put_profiles{"store_put_profiles",
    "INSERT INTO profiles (user_id, profile, updated_at) "
    "SELECT u.user_id, u.profile, clock_timestamp() FROM unnest($1::text[], $2::text[]) AS u(user_id, profile) "
    "ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at"};

inline const pg::statement put_onboarding{"store_put_onboarding",
    "INSERT INTO onboarding (user_id, state, updated_at) "
    "SELECT u.user_id, u.state::jsonb, clock_timestamp() FROM unnest($1::text[], $2::text[]) AS u(user_id, state) "
    "ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at"};

// The N+1 baseline (coalesce off): one statement per lookup.
inline const pg::statement naive_profile{"store_naive_profile",
    "SELECT profile FROM profiles WHERE user_id = $1::text"};
inline const pg::statement naive_onboarding{"store_naive_onboarding",
    "SELECT state::text FROM onboarding WHERE user_id = $1::text"};
inline const pg::statement naive_recent{"store_naive_recent",
    "SELECT user_id, category, key, value, created_at, updated_at FROM memories WHERE user_id = $1::text "
    "ORDER BY updated_at DESC, category, key LIMIT $2::int4"};
inline const pg::statement naive_count{"store_naive_count",
    "SELECT count(*) FROM memories WHERE user_id = $1::text"};
inline const pg::statement naive_delete{"store_naive_delete",
    "DELETE FROM memories WHERE user_id = $1::text AND key = $2::text AND ($3::text = '' OR category = $3::text)"};
inline const pg::statement naive_search{"store_naive_search",
    "SELECT $2::text, key, value, created_at, updated_at FROM memories WHERE user_id = $1::text AND category = $2::text "
    "ORDER BY updated_at DESC, key LIMIT $3::int4"};

// The primary's current position, to tell a min_position from the future.
inline const pg::statement primary_position{"store_primary_position", "SELECT pg_current_wal_insert_lsn()::text"};

}  // namespace dataloader::store::detail::sql
