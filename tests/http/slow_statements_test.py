#!/usr/bin/env python3
"""The slow-statement monitor (SPEC "Paging and slow statements", --slow-statement-ms):
a statement held up by a lock another session holds is logged once, with its name, keys,
rows, server and milliseconds but no parameter value, and counted in /stats and /metrics;
fast statements are not; 0 turns the monitor off.

Run by CTest (label pg): slow_statements_test.py SERVER_BINARY ENV_FILE.
"""
import re
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SERVER, URL, Server, psql, quote  # noqa: F401

SECRET = "secret-person@example.com"  # a user id that must never reach the log


def hold_lock(table, seconds):
    """Another session holds an exclusive lock on `table` for `seconds`; returns once it does."""
    session = subprocess.Popen(["psql", "-X", "-q", "-d", URL, "-c",
                                f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        held = psql(f"SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = 'AccessExclusiveLock' "
                    "AND granted")
        if held.strip() == "1":
            return session
        time.sleep(0.01)
    session.kill()
    raise AssertionError("the lock was not taken")


class SlowStatements(unittest.TestCase):
    def start(self, *extra):
        log = tempfile.NamedTemporaryFile(mode="w+", prefix="slow-statements.", suffix=".log")
        server = Server(*extra, stderr=log)
        self.addCleanup(log.close)
        self.addCleanup(server.stop)
        return server, log

    def slow_lines(self, log):
        log.flush()
        with open(log.name) as f:
            return [line for line in f if "slow statement" in line]

    def test_a_statement_held_by_a_lock_is_logged_once_and_counted_fast_ones_are_not(self):
        s, log = self.start("--slow-statement-ms", "100")
        user = quote(SECRET)
        for _ in range(20):  # fast work of every kind
            self.assertEqual(s.request("GET", f"/v1/users/{user}/prefetch")[0], 200)
            self.assertEqual(s.request("GET", f"/v1/profiles?ids={user},other")[0], 200)
            self.assertEqual(s.request("PUT", f"/v1/users/{user}/profile", {"profile": "p"})[0], 200)
        self.assertEqual(s.stats()["db"]["slow_statements"], {})
        self.assertEqual(self.slow_lines(log), [])

        locker = hold_lock("profiles", 0.5)
        results = []
        reader = threading.Thread(target=lambda: results.append(
            s.request("GET", f"/v1/profiles?ids={user},{quote(SECRET + '-2')},third")))
        reader.start()
        # While it waits, fast statements on other tables go by unblamed.
        for _ in range(5):
            self.assertEqual(s.request("GET", f"/v1/users/{user}/memories")[0], 200)
        reader.join()
        locker.wait()
        self.assertEqual(results[0][0], 200, results)

        deadline = time.time() + 5
        while time.time() < deadline and not self.slow_lines(log):
            time.sleep(0.02)
        lines = self.slow_lines(log)
        self.assertEqual(len(lines), 1, lines)
        m = re.fullmatch(r"dataloader-server: slow statement store_get_profiles: ([0-9.]+) ms, 3 keys, 1 row, "
                         r"server (\S+)\n", lines[0])
        self.assertIsNotNone(m, lines[0])
        self.assertGreaterEqual(float(m.group(1)), 100)
        self.assertNotIn("secret", lines[0])
        self.assertNotIn("example.com", lines[0])
        self.assertEqual(s.stats()["db"]["slow_statements"], {"store_get_profiles": 1})
        metrics = s.request("GET", "/metrics")[1]
        self.assertIn('dataloader_db_slow_statements_total{statement="store_get_profiles"} 1\n', metrics)

    def test_zero_turns_the_monitor_off(self):
        s, log = self.start("--slow-statement-ms", "0")
        locker = hold_lock("profiles", 0.3)
        self.assertEqual(s.request("GET", "/v1/profiles?ids=someone")[0], 200)
        locker.wait()
        self.assertEqual(s.stats()["db"]["slow_statements"], {})
        self.assertEqual(self.slow_lines(log), [])


if __name__ == "__main__":
    unittest.main()
