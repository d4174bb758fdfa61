#!/usr/bin/env python3
"""The replica fixture (scripts/pg-server.sh replica): a hot standby that streams the test
PostgreSQL's changes, whose replay can be paused and resumed. The ground the replica
tests of the service stand on.

Run by CTest (label pg, fixtures pg and pg_replica): replica_test.py SERVER_BINARY ENV_FILE.
"""
import subprocess
import time
import unittest

from harness import ENV, psql

REPLICA_URL = ENV.get("REPLICA_URL", "")


def wait_for(condition, seconds=20):
    """True once `condition` holds; a query failing meanwhile (a table not replayed yet)
    counts as not yet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.02)
    return False


@unittest.skipUnless(REPLICA_URL, "needs the fixture's replica (not with TEST_DATABASE_URL)")
class Replica(unittest.TestCase):
    def replica(self, sql):
        return psql(sql, REPLICA_URL)

    def test_it_is_a_hot_standby_fed_through_its_own_slot(self):
        self.assertEqual(self.replica("SELECT pg_is_in_recovery()"), "t")
        self.assertEqual(psql("SELECT count(*) FROM pg_replication_slots WHERE active AND slot_type = 'physical'"), "1")
        self.assertEqual(psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"), "1")

    def test_a_committed_change_arrives_and_a_paused_replay_holds_it_back(self):
        psql("CREATE TABLE IF NOT EXISTS replica_probe (id int PRIMARY KEY, v text)")
        psql("INSERT INTO replica_probe VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET v = 'a'")
        self.assertTrue(wait_for(lambda: self.replica("SELECT v FROM replica_probe WHERE id = 1") == "a"))

        self.replica("SELECT pg_wal_replay_pause()")
        try:
            self.assertTrue(wait_for(lambda: self.replica("SELECT pg_get_wal_replay_pause_state()") == "paused"))
            psql("UPDATE replica_probe SET v = 'b' WHERE id = 1")
            written = psql("SELECT pg_current_wal_insert_lsn()")
            # Received but not replayed: the old value, and a replay position behind the write.
            self.assertTrue(wait_for(lambda: self.replica(
                f"SELECT pg_last_wal_receive_lsn() >= '{written}'::pg_lsn") == "t"))
            self.assertEqual(self.replica("SELECT v FROM replica_probe WHERE id = 1"), "a")
            self.assertEqual(self.replica(f"SELECT pg_last_wal_replay_lsn() < '{written}'::pg_lsn"), "t")
        finally:
            self.replica("SELECT pg_wal_replay_resume()")
        self.assertTrue(wait_for(lambda: self.replica("SELECT v FROM replica_probe WHERE id = 1") == "b"))
        psql("DROP TABLE replica_probe")


if __name__ == "__main__":
    unittest.main(verbosity=2)
