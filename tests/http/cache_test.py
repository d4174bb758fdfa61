#!/usr/bin/env python3
"""The cache across requests (SPEC "Beyond one process", --cache-entries): two instances
of the built server with the cache on, one test PostgreSQL. Changes made through either
instance or by psql reach both caches through dataloader_invalidate; a lost listening
connection stops the cache at once; TTL and the entry bound hold.

Run by CTest (label pg): cache_test.py SERVER_BINARY ENV_FILE.
"""
import subprocess
import threading
import time
import unittest

from harness import SERVER, URL, Server, psql, quote

LISTENER = "asio-dataloader-listener"  # the listening connection's application_name


def wait_until(predicate, seconds=10.0, what="condition"):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def serving(server):
    return server.stats()["cache"]["serving"]


def profile_of(server, user):
    status, body, _ = server.request("GET", f"/v1/users/{quote(user)}/prefetch")
    assert status == 200, body
    return body["profile"]


class Cache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Server("--cache-entries", "10000")
        cls.b = Server("--cache-entries", "10000")
        for s in (cls.a, cls.b):
            wait_until(lambda s=s: serving(s), what="the cache to serve")

    @classmethod
    def tearDownClass(cls):
        for s in (cls.a, cls.b):
            s.stop()

    def warm(self, user, value):
        """Both instances hold `value` for `user`, from their caches."""
        for s in (self.a, self.b):
            wait_until(lambda s=s: profile_of(s, user) == value, what=f"{value!r} on every instance")
            hits = s.stats()["cache"]["hits"]
            self.assertEqual(profile_of(s, user), value)
            self.assertGreater(s.stats()["cache"]["hits"], hits, "the second read is a hit")

    def converge(self, user, value, reads_after=30):
        """Every instance shows `value` within a bound, and never anything else afterwards."""
        for s in (self.a, self.b):
            started = time.time()
            wait_until(lambda s=s: profile_of(s, user) == value, seconds=5, what=f"{value!r} on port {s.port}")
            latency = time.time() - started
            for _ in range(reads_after):
                self.assertEqual(profile_of(s, user), value, "an old value came back")
            self.assertLess(latency, 5)

    def test_a_write_through_one_instance_invalidates_the_other(self):
        user = "cache-a-to-b"
        self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": "v0"})
        self.warm(user, "v0")
        before = self.b.stats()["cache"]["notifications"]
        for round_ in range(1, 6):
            value = f"v{round_}"
            self.assertEqual(self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": value})[0], 200)
            # The instance that acknowledged the write serves it at once.
            self.assertEqual(profile_of(self.a, user), value)
            self.converge(user, value)
        self.assertGreater(self.b.stats()["cache"]["notifications"], before)

    def test_a_token_read_never_gets_an_older_entry(self):
        user = "cache-token"
        self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": "old"})
        self.warm(user, "old")
        for round_ in range(20):
            value = f"new-{round_}"
            _, _, headers = self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": value})
            token = {"Dataloader-Min-LSN": headers["Dataloader-LSN"]}
            for path, pick in [(f"/v1/users/{user}/prefetch", lambda b: b["profile"]),
                               (f"/v1/profiles?ids={user}", lambda b: b["profiles"][user])]:
                status, body, _ = self.b.request("GET", path, headers=token)
                self.assertEqual(status, 200, body)
                self.assertEqual(pick(body), value, path)

    def test_a_psql_write_invalidates_both_instances(self):
        user = "cache-psql"
        psql(f"INSERT INTO profiles (user_id, profile) VALUES ('{user}', 'before') "
             "ON CONFLICT (user_id) DO UPDATE SET profile = 'before'")
        self.warm(user, "before")
        psql(f"UPDATE profiles SET profile = 'after' WHERE user_id = '{user}'")
        self.converge(user, "after")
        # Memories and onboarding state are part of the snapshot too.
        psql(f"INSERT INTO memories (user_id, category, key, value) VALUES ('{user}', 'FACT', 'k', 'fresh')")
        for s in (self.a, self.b):
            wait_until(lambda s=s: s.request("GET", f"/v1/users/{user}/prefetch")[1]["memory_count"] == 1,
                       seconds=5, what="the new memory")
        psql(f"DELETE FROM memories WHERE user_id = '{user}'")
        for s in (self.a, self.b):
            wait_until(lambda s=s: s.request("GET", f"/v1/users/{user}/prefetch")[1]["memory_count"] == 0,
                       seconds=5, what="the memory deleted")

    def test_a_lost_listener_stops_the_cache_until_it_listens_again(self):
        users = [f"cache-gap-{i}" for i in range(20)]
        for u in users:
            psql(f"INSERT INTO profiles (user_id, profile) VALUES ('{u}', 'v0') "
                 "ON CONFLICT (user_id) DO UPDATE SET profile = 'v0'")
        # Under load: readers on both instances all along.
        stop = threading.Event()
        errors = []

        def read_loop(server):
            while not stop.is_set():
                for u in users:
                    status, body, _ = server.request("GET", f"/v1/users/{u}/prefetch")
                    if status != 200:
                        errors.append(body)

        readers = [threading.Thread(target=read_loop, args=(s,)) for s in (self.a, self.b) for _ in range(2)]
        for t in readers:
            t.start()
        try:
            resyncs = [s.stats()["cache"]["resyncs"] for s in (self.a, self.b)]
            for round_ in range(1, 4):
                for u in users:
                    self.warm(u, f"v{round_ - 1}")
                # The listening backends go away, and the change commits right after, in
                # the same transaction: its notification reaches neither of them (their new
                # connections take a fork and a login, far longer than the commit).
                killed = psql(f"UPDATE profiles SET profile = 'v{round_}' WHERE user_id LIKE 'cache-gap-%'; "
                              f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              f"WHERE application_name = '{LISTENER}'")
                self.assertEqual(killed, "2")
                # pg_terminate_backend() only signals: a dying backend's connection closes a
                # moment later, and until then nothing tells an instance that it stopped
                # listening. From the moment it sees the connection gone, nothing cached
                # before may be served: not in the gap, not after it.
                for s, before in zip((self.a, self.b), resyncs):
                    wait_until(lambda s=s, before=before: s.stats()["cache"]["resyncs"] > before + round_ - 1,
                               what="the instance to notice its listener gone")
                for s in (self.a, self.b):
                    for u in users:
                        self.assertEqual(profile_of(s, u), f"v{round_}", "a stale answer in the gap")
                for s in (self.a, self.b):
                    wait_until(lambda s=s: serving(s), what="the cache to serve again")
            for s, before in zip((self.a, self.b), resyncs):
                self.assertEqual(s.stats()["cache"]["resyncs"], before + 3)
        finally:
            stop.set()
            for t in readers:
                t.join()
        self.assertEqual(errors, [])


class Answers(unittest.TestCase):
    def test_a_hit_answers_every_limit_as_a_read_without_the_cache(self):
        # A hit serves the snapshot's text, rendered by its first hit and kept with it.
        user = "cache-answer \"ü\""
        memories = [{"user_id": user, "category": "FACT", "key": f"k{i}", "value": f"line {i}\n\"quoted\" ✓"}
                    for i in range(12)]
        cached, plain = Server("--cache-entries", "100"), Server()
        try:
            wait_until(lambda: serving(cached), what="the cache to serve")
            self.assertEqual(plain.request("POST", "/v1/memories", {"memories": memories})[0], 200)
            self.assertEqual(plain.request("PUT", f"/v1/users/{quote(user)}/onboarding", {"state": {"step": 3}})[0], 200)
            path = f"/v1/users/{quote(user)}/prefetch"
            for limit in (20, 1, 5, 12, 20, 1, 3):
                hits = cached.stats()["cache"]["hits"]
                got = cached.request("GET", f"{path}?memory_limit={limit}")
                want = plain.request("GET", f"{path}?memory_limit={limit}")
                self.assertEqual((got[0], got[1]), (want[0], want[1]), f"memory_limit={limit}")
                self.assertEqual(len(got[1]["recent_memories"]), min(limit, 12))
                if limit != 20 or hits > 0:
                    self.assertEqual(cached.stats()["cache"]["hits"], hits + 1, f"memory_limit={limit} is a hit")
        finally:
            cached.stop()
            plain.stop()


class Bounds(unittest.TestCase):
    def test_entries_never_exceed_the_bound_and_expire(self):
        s = Server("--cache-entries", "5", "--cache-ttl-ms", "300")
        try:
            wait_until(lambda: serving(s), what="the cache to serve")
            for i in range(40):
                self.assertEqual(s.request("GET", f"/v1/users/cache-bound-{i}/prefetch")[0], 200)
                self.assertLessEqual(s.stats()["cache"]["entries"], 5)
            cache = s.stats()["cache"]
            self.assertEqual(cache["entries"], 5)
            self.assertGreater(cache["bytes"], 0)
            # A hit, then the same read after the TTL is a miss.
            s.request("GET", "/v1/users/cache-bound-39/prefetch")
            hits = s.stats()["cache"]["hits"]
            s.request("GET", "/v1/users/cache-bound-39/prefetch")
            self.assertEqual(s.stats()["cache"]["hits"], hits + 1)
            time.sleep(0.4)
            misses = s.stats()["cache"]["misses"]
            s.request("GET", "/v1/users/cache-bound-39/prefetch")
            self.assertEqual(s.stats()["cache"]["misses"], misses + 1)
            metrics = s.request("GET", "/metrics")[1]
            self.assertIn("dataloader_cache_hits_total ", metrics)
            self.assertIn("dataloader_cache_entries 5", metrics)
        finally:
            s.stop()

    def test_a_server_without_the_option_has_no_cache(self):
        s = Server()
        try:
            cache = s.stats()["cache"]
            self.assertFalse(cache["enabled"])
            s.request("GET", "/v1/users/nocache/prefetch")
            s.request("GET", "/v1/users/nocache/prefetch")
            self.assertEqual(s.stats()["cache"]["hits"], 0)
        finally:
            s.stop()

    def test_bad_cache_options_exit_2_with_one_line(self):
        for args in (["--cache-entries", "-1"], ["--cache-entries", "many"], ["--cache-ttl-ms", "0"]):
            p = subprocess.run([SERVER, "serve", "--database-url", URL, *args], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn(args[0], p.stderr)


if __name__ == "__main__":
    unittest.main()
