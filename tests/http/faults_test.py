#!/usr/bin/env python3
"""When PostgreSQL stops answering, breaks connections, or is not there at start: the
built server, the test PostgreSQL, real HTTP.

Run by CTest (label pg): faults_test.py SERVER_BINARY ENV_FILE. Pauses the fixture's own
PostgreSQL, so it holds the pg_server lock and is skipped on an external server.
"""
import subprocess
import sys
import threading
import time
import unittest

from harness import PG_DIR, URL, PgControl, Relay, Server, pg_tcp_port, psql

STATEMENT_DEADLINE_S = 1.0  # DATALOADER_STATEMENT_TIMEOUT_MS below
ACQUIRE_DEADLINE_S = 2.0    # the pool's default acquire timeout
RETRY_SAFE = "it may or may not have been applied; retrying it is safe"


def in_parallel(calls):
    """Runs each call in its own thread; returns [(result, seconds)] in order."""
    out = [None] * len(calls)

    def run(i, f):
        started = time.monotonic()
        try:
            result = f()
        except Exception as e:  # noqa: BLE001 (reported by the caller's assertions)
            result = e
        out[i] = (result, time.monotonic() - started)

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@unittest.skipUnless(PG_DIR, "needs the test fixture's own PostgreSQL (not TEST_DATABASE_URL)")
class PausedDatabase(unittest.TestCase):
    def test_503_within_the_deadline_then_serving_within_1_s_of_its_return(self):
        pg = PgControl()
        srv = Server(env={"DATALOADER_STATEMENT_TIMEOUT_MS": str(int(STATEMENT_DEADLINE_S * 1000))})
        try:
            self.assertEqual(srv.request("GET", "/v1/users/stall-1/prefetch")[0], 200)
            self.assertEqual(srv.request("PUT", "/v1/users/stall-1/profile", {"profile": "before"})[0], 200)
            pg.pause()
            try:
                answers = in_parallel([
                    lambda: srv.request("GET", "/v1/users/stall-1/prefetch"),
                    lambda: srv.request("GET", "/v1/profiles?ids=stall-1,stall-2"),
                    lambda: srv.request("PUT", "/v1/users/stall-1/profile", {"profile": "during"}),
                    lambda: srv.request("GET", "/readyz"),
                ])
                for (result, took), what in zip(answers, ("prefetch", "profiles", "put", "readyz")):
                    self.assertNotIsInstance(result, Exception, what)
                    status, body, headers = result
                    self.assertEqual((status, body["error"]["code"]), (503, "unavailable"), (what, body))
                    self.assertEqual(headers.get("Retry-After"), "1")
                    # The documented deadline: the statement deadline for a statement sent,
                    # the acquire timeout for one waiting for a connection (+ slack for a
                    # loaded machine; a hang would be 30 s).
                    self.assertLess(took, max(STATEMENT_DEADLINE_S, ACQUIRE_DEADLINE_S) + 2.0, what)
                put = answers[2][0][1]["error"]["message"]
                self.assertIn(RETRY_SAFE, put)
                # Paused past the cancel grace: connections are dropped and reconnecting
                # to a server that does not answer; requests keep getting 503, not hangs.
                time.sleep(3)
                status, body, _ = srv.request("GET", "/v1/users/stall-1/prefetch", timeout=10)
                self.assertEqual(status, 503, body)
            finally:
                pg.resume()
            resumed = time.monotonic()
            status = None
            while time.monotonic() - resumed < 10:
                status = srv.request("GET", "/v1/users/stall-1/prefetch")[0]
                if status == 200:
                    break
                time.sleep(0.01)
            back = time.monotonic() - resumed
            print(f"\nserving again {back * 1000:.0f} ms after SIGCONT", file=sys.stderr)
            self.assertEqual(status, 200)
            self.assertLess(back, 1.0)
            self.assertEqual(srv.request("GET", "/readyz")[0], 200)
            # The write answered with an unknown outcome was either applied or not: both
            # are consistent states, and repeating it converges.
            self.assertIn(psql("SELECT profile FROM profiles WHERE user_id = 'stall-1'"), ("before", "during"))
            self.assertEqual(srv.request("PUT", "/v1/users/stall-1/profile", {"profile": "during"})[0], 200)
            self.assertEqual(psql("SELECT profile FROM profiles WHERE user_id = 'stall-1'"), "during")
        finally:
            pg.resume()
            self.assertEqual(srv.stop(), 0)


@unittest.skipUnless(PG_DIR, "needs the test fixture's own PostgreSQL (not TEST_DATABASE_URL)")
class BrokenConnections(unittest.TestCase):
    def test_a_write_cut_off_after_it_was_sent_says_it_may_have_been_applied_and_that_retry_is_safe(self):
        relay = Relay(("127.0.0.1", pg_tcp_port())).start()
        srv = Server(url=relay.url())
        locker = subprocess.Popen(["psql", "-X", "-q", "-d", URL], stdin=subprocess.PIPE, text=True,
                                  stdout=subprocess.DEVNULL)
        try:
            self.assertEqual(srv.request("PUT", "/v1/users/cut-1/profile", {"profile": "v1"})[0], 200)
            # Hold the row, so the next write is sent and then waits inside PostgreSQL.
            locker.stdin.write("BEGIN; SELECT 1 FROM profiles WHERE user_id = 'cut-1' FOR UPDATE;\n")
            locker.stdin.flush()
            wait_for(lambda: psql("SELECT count(*) FROM pg_locks WHERE NOT granted") == "0" and
                     psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'") != "0")
            answer = []
            writer = threading.Thread(target=lambda: answer.append(
                srv.request("PUT", "/v1/users/cut-1/profile", {"profile": "v2"})))
            writer.start()
            wait_for(lambda: psql("SELECT count(*) FROM pg_locks WHERE NOT granted") != "0")
            relay.cut()
            writer.join(timeout=20)
            status, body, headers = answer[0]
            self.assertEqual((status, body["error"]["code"]), (503, "unavailable"), body)
            self.assertIn(RETRY_SAFE, body["error"]["message"])
            self.assertIn("after the statements were sent", body["error"]["message"])
            self.assertEqual(headers.get("Retry-After"), "1")
            # Released, the orphaned statement commits: "may have been applied" was true.
            locker.stdin.write("COMMIT;\n")
            locker.stdin.flush()
            wait_for(lambda: psql("SELECT profile FROM profiles WHERE user_id = 'cut-1'") == "v2")
            status, body, _ = srv.request("PUT", "/v1/users/cut-1/profile", {"profile": "v2"})
            self.assertEqual(status, 200, body)
            self.assertEqual(srv.request("GET", "/v1/profiles?ids=cut-1")[1]["profiles"]["cut-1"], "v2")
        finally:
            locker.stdin.close()
            locker.wait(timeout=10)
            relay.stop()
            self.assertEqual(srv.stop(), 0)

    def test_a_database_absent_at_start_shows_in_readyz_and_the_service_becomes_ready_when_it_comes(self):
        relay = Relay(("127.0.0.1", pg_tcp_port()))  # nothing listens on its port yet
        srv = Server(url=relay.url(), wait="healthz")
        try:
            status, body, _ = srv.request("GET", "/readyz")
            self.assertEqual((status, body["error"]["code"]), (503, "unavailable"))
            # First "starting", then the latest attempt's failure with libpq's reason.
            wait_for(lambda: "refused" in srv.request("GET", "/readyz")[1]["error"]["message"], seconds=10)
            status, body, _ = srv.request("GET", "/readyz")
            self.assertEqual(status, 503)
            self.assertIn("database migrations not applied yet", body["error"]["message"])
            status, body, _ = srv.request("GET", "/v1/users/late-1/prefetch")
            self.assertEqual((status, body["error"]["code"]), (503, "unavailable"))
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            self.assertEqual(srv.request("GET", "/stats")[0], 200)
            relay.start()
            wait_for(lambda: srv.request("GET", "/readyz")[0] == 200, seconds=10)
            self.assertEqual(srv.request("GET", "/v1/users/late-1/prefetch")[0], 200)
        finally:
            relay.stop()
            self.assertEqual(srv.stop(), 0)


def wait_for(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


if __name__ == "__main__":
    unittest.main(verbosity=2)
