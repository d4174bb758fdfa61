// Read-your-writes across processes (SPEC.md, "Beyond one process"), as the store offers
// it to embedders: positions in PostgreSQL's write-ahead log travel with operations.
//
//   - A write's `position` is at or after the end of its commit record on the primary
//     (read with pg_current_wal_insert_lsn() after the commit, in the same round trip).
//   - A read given `min_position` reflects every write whose position is at or before it;
//     its `position` is one its data is at least as new as (never below min_position).
//     A min_position beyond the primary's current position is refused with
//     errc::invalid_argument: it cannot come from this database.
//
// How reads keep the promise on the primary: a client holds a write's position only after
// that write committed and became visible, so any statement sent after the read arrived
// sees it. A read with a min_position therefore never joins a batch that was already in
// flight with an older position; it starts a fresh one.
#pragma once

#include "dataloader/pg/lsn.hpp"

namespace dataloader::store {

struct consistency {
  pg::lsn min_position;  // in: reads only; 0/0 asks for nothing
  pg::lsn position;      // out: set when the operation succeeds
};

}  // namespace dataloader::store
