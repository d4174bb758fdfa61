#!/usr/bin/env python3
"""Reads spread over a streaming replica, with read-your-writes across instances (SPEC
"Beyond one process"): two instances of the built server, each reading from the fixture's
replica, whose replay the tests pause and resume, stop and start.

Run by CTest (label pg, fixtures pg and pg_replica): replicas_test.py SERVER_BINARY ENV_FILE.
"""
import random
import subprocess
import threading
import time
import unittest

from harness import ENV, PG_SERVER, Server, psql, quote

REPLICA_URL = ENV.get("REPLICA_URL", "")
REPLICA_DIR = ENV.get("REPLICA_DIR", "")


def lsn_value(text):
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def replica(sql):
    return psql(sql, REPLICA_URL)


def wait_for(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except (subprocess.CalledProcessError, OSError):
            pass
        time.sleep(0.02)
    return False


def pause_replay():
    replica("SELECT pg_wal_replay_pause()")
    assert wait_for(lambda: replica("SELECT pg_get_wal_replay_pause_state()") == "paused")


def resume_replay():
    replica("SELECT pg_wal_replay_resume()")


def replica_reads(srv):
    return srv.request("GET", "/stats")[1]["db"]["hosts"][1]["reads"]


def profile_via(srv, user, token=None):
    headers = {"Dataloader-Min-LSN": token} if token else {}
    status, body, got = srv.request("GET", f"/v1/users/{quote(user)}/prefetch", headers=headers)
    assert status == 200, body
    return body["profile"], got["Dataloader-LSN"]


@unittest.skipUnless(REPLICA_URL, "needs the fixture's replica (not with TEST_DATABASE_URL)")
class Replicas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A long lag limit: with replay paused, the replica stays eligible for reads that
        # do not need what it has not replayed.
        args = ("--replica-url", REPLICA_URL, "--max-replica-lag-ms", "60000")
        cls.a = Server(*args)
        cls.b = Server(*args)

    @classmethod
    def tearDownClass(cls):
        resume_replay()
        for s in (cls.a, cls.b):
            s.stop()

    def test_stats_report_both_servers(self):
        hosts = self.b.request("GET", "/stats")[1]["db"]["hosts"]
        self.assertEqual([h["role"] for h in hosts], ["primary", "replica"])
        self.assertTrue(wait_for(lambda: self.b.request("GET", "/stats")[1]["db"]["hosts"][1]["connected"]))
        metrics = self.b.request("GET", "/metrics")[1]
        self.assertIn('dataloader_db_host_reads_total{host="1",role="replica"}', metrics)

    def test_a_write_through_a_is_read_through_b_with_its_token_while_the_replica_lags(self):
        user = "rep-paused"
        _, _, h0 = self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": "old"})
        self.assertTrue(wait_for(lambda: replica(f"SELECT profile FROM profiles WHERE user_id = '{user}'") == "old"))
        # B reads from the replica (its statements there move).
        before = replica_reads(self.b)
        self.assertTrue(wait_for(lambda: profile_via(self.b, user)[0] == "old"))
        self.assertGreater(replica_reads(self.b), before)

        pause_replay()
        try:
            status, _, written = self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": "new"})
            self.assertEqual(status, 200)
            token = written["Dataloader-LSN"]
            # With A's token B answers the new value (the replica has not replayed it).
            profile, position = profile_via(self.b, user, token)
            self.assertEqual(profile, "new")
            self.assertGreaterEqual(lsn_value(position), lsn_value(token))
            # Without it B may answer from the replica: the old value, and says how old.
            profile, position = profile_via(self.b, user)
            if profile == "old":
                self.assertLess(lsn_value(position), lsn_value(token))
            # A acknowledged the write: its own reads see it without any header.
            self.assertEqual(profile_via(self.a, user)[0], "new")
        finally:
            resume_replay()
        # Replayed: B serves the new value from the replica again.
        self.assertTrue(wait_for(lambda: replica(f"SELECT profile FROM profiles WHERE user_id = '{user}'") == "new"))
        before = replica_reads(self.b)
        self.assertTrue(wait_for(lambda: profile_via(self.b, user)[0] == "new"))
        self.assertTrue(wait_for(lambda: (profile_via(self.b, user), replica_reads(self.b))[1] > before))

    def test_random_pauses_never_serve_data_older_than_its_token(self):
        users = [f"rep-rand-{i}" for i in range(4)]
        servers = [self.a, self.b]
        # A third instance only reads: no write of its own sends its reads to the primary,
        # so only the tokens decide.
        c = Server("--replica-url", REPLICA_URL, "--max-replica-lag-ms", "60000")
        readers = servers + [c]
        done = threading.Event()
        tokens = []  # (user, version, token), appended once a write is acknowledged
        lock = threading.Lock()
        failures = []
        reads = [0]

        def writer(user):
            version = 0
            while not done.is_set():
                version += 1
                srv = random.choice(servers)
                status, _, h = srv.request("PUT", f"/v1/users/{user}/profile", {"profile": str(version)})
                if status != 200:
                    failures.append(f"write {status}")
                    return
                with lock:
                    tokens.append((user, version, h["Dataloader-LSN"]))

        def reader():
            while not done.is_set():
                with lock:
                    if not tokens:
                        continue
                    # Fresh tokens (which the replica has rarely replayed yet) and older ones.
                    user, version, token = random.choice(tokens[-50:] if random.random() < 0.5 else tokens)
                profile, position = profile_via(random.choice(readers), user, token)
                reads[0] += 1
                if int(profile) < version:
                    failures.append(f"{user}: read {profile} with the token of version {version}")
                if lsn_value(position) < lsn_value(token):
                    failures.append(f"{user}: answered at {position}, below its token {token}")

        served_by_replica = sum(replica_reads(s) for s in readers)
        threads = [threading.Thread(target=writer, args=(u,)) for u in users] + \
                  [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            end = time.monotonic() + 8
            while time.monotonic() < end:
                pause_replay()
                time.sleep(random.uniform(0.05, 0.4))
                resume_replay()
                time.sleep(random.uniform(0.05, 0.4))
        finally:
            done.set()
            for t in threads:
                t.join()
            resume_replay()
        served_by_replica = sum(replica_reads(s) for s in readers) - served_by_replica
        c.stop()
        self.assertEqual(failures, [])
        self.assertGreater(reads[0], 100)
        self.assertGreater(served_by_replica, 0, "the replica served some of them")
        print(f"\n{reads[0]} reads with tokens ({served_by_replica} from the replica), {len(tokens)} writes, none stale",
              flush=True)

    @unittest.skipUnless(REPLICA_DIR, "needs the fixture's own replica")
    def test_replica_stopped_mid_load_reads_go_to_the_primary_then_come_back(self):
        user = "rep-stop"
        self.assertEqual(self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": "x"})[0], 200)
        statuses, slow = [], []
        done = threading.Event()

        def load():
            while not done.is_set():
                t0 = time.monotonic()
                statuses.append(self.b.request("GET", f"/v1/users/{user}/prefetch")[0])
                slow.append(time.monotonic() - t0)

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(0.3)
            subprocess.run([PG_SERVER, "stop", REPLICA_DIR], check=True, capture_output=True)
            time.sleep(1.5)
            self.assertTrue(wait_for(lambda: not self.b.request("GET", "/stats")[1]["db"]["hosts"][1]["connected"]))
            subprocess.run([PG_SERVER, "start", REPLICA_DIR], check=True, capture_output=True)
            self.assertTrue(wait_for(lambda: self.b.request("GET", "/stats")[1]["db"]["hosts"][1]["connected"]))
            before = replica_reads(self.b)
            self.assertTrue(wait_for(lambda: replica_reads(self.b) > before + 10))
        finally:
            done.set()
            t.join()
        self.assertEqual(set(statuses), {200}, "every read answered")
        self.assertLess(max(slow), 1.0, "none waited a second")


if __name__ == "__main__":
    unittest.main(verbosity=2)
