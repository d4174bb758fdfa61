#!/usr/bin/env python3
"""End-to-end tests: the built dataloader-server, the test PostgreSQL, real HTTP.

Run by CTest (label pg): e2e_test.py SERVER_BINARY ENV_FILE. Standard library only.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from harness import PG_DIR, ROOT, SERVER, URL, Server, psql, quote  # noqa: E402 (reads argv)


class Routes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0

    def test_health_and_readiness(self):
        self.assertEqual(self.srv.request("GET", "/healthz")[0], 200)
        self.assertEqual(self.srv.request("GET", "/readyz")[0], 200)

    def test_profile_and_onboarding_round_trip_through_prefetch(self):
        s = self.srv
        self.assertEqual(s.request("PUT", "/v1/users/e2e-1/profile", {"profile": "hello"})[:2],
                         (200, {"user_id": "e2e-1", "updated": True}))
        self.assertEqual(s.request("PUT", "/v1/users/e2e-1/onboarding", {"state": {"step": 3}})[0], 200)
        items = [{"user_id": "e2e-1", "category": "FACT", "key": f"k{i}", "value": f"v{i}"} for i in range(5)]
        self.assertEqual(s.request("POST", "/v1/memories", {"memories": items})[:2], (200, {"saved": 5}))
        status, body, _ = s.request("GET", "/v1/users/e2e-1/prefetch?memory_limit=2")
        self.assertEqual(status, 200)
        self.assertEqual(body["profile"], "hello")
        self.assertEqual(body["onboarding"], {"step": 3})
        self.assertEqual(body["memory_count"], 5)
        self.assertEqual(len(body["recent_memories"]), 2)
        m = body["recent_memories"][0]
        self.assertEqual(set(m), {"user_id", "category", "key", "value", "created_at", "updated_at"})
        self.assertTrue(m["updated_at"].endswith("Z"))
        status, body, _ = s.request("GET", "/v1/users/nobody-e2e/prefetch")
        self.assertEqual((status, body["profile"], body["onboarding"], body["memory_count"], body["recent_memories"]),
                         (200, None, None, 0, []))

    def test_profiles_lookup_by_ids_and_repeated_id(self):
        s = self.srv
        s.request("PUT", "/v1/users/e2e-p1/profile", {"profile": "one"})
        self.assertEqual(s.request("GET", "/v1/profiles?ids=e2e-p1,e2e-none")[1],
                         {"profiles": {"e2e-p1": "one", "e2e-none": None}})
        self.assertEqual(s.request("GET", "/v1/profiles?id=e2e-p1&id=" + quote("a,b"))[1],
                         {"profiles": {"e2e-p1": "one", "a,b": None}})

    def save_two_categories(self, user):
        items = [{"user_id": user, "category": c, "key": f"{c}{i}", "value": "x"} for c in ("FACT", "GOAL") for i in range(3)]
        self.assertEqual(self.srv.request("POST", "/v1/memories", {"memories": items})[:2], (200, {"saved": 6}))

    def test_memories_filter_by_category_keys_and_limit(self):
        s = self.srv
        self.save_two_categories("e2e-m")
        self.assertEqual(len(s.request("GET", "/v1/users/e2e-m/memories?category=GOAL")[1]["memories"]), 3)
        self.assertEqual(len(s.request("GET", "/v1/users/e2e-m/memories?keys=FACT0,GOAL1&limit=10")[1]["memories"]), 2)
        self.assertEqual(len(s.request("GET", "/v1/users/e2e-m/memories?limit=1")[1]["memories"]), 1)

    def test_memories_page_with_after_until_next_is_null(self):
        s = self.srv
        self.save_two_categories("e2e-pages")
        status, full, _ = s.request("GET", "/v1/users/e2e-pages/memories")
        self.assertEqual((status, full["next"]), (200, None))
        walked, after = [], None
        while True:
            query = "limit=4" + (f"&after={after}" if after else "")
            status, page, _ = s.request("GET", f"/v1/users/e2e-pages/memories?{query}")
            self.assertEqual(status, 200, page)
            walked += page["memories"]
            after = page["next"]
            if after is None:
                break
        self.assertEqual(walked, full["memories"])
        # Same filter: continues; another user or filter, or an altered cursor: 400 naming after.
        first = s.request("GET", "/v1/users/e2e-pages/memories?category=GOAL&limit=2")[1]
        self.assertEqual(len(s.request("GET", f"/v1/users/e2e-pages/memories?category=GOAL&after={first['next']}")[1]["memories"]), 1)
        for path in (f"/v1/users/e2e-m/memories?category=GOAL&after={first['next']}",
                     f"/v1/users/e2e-pages/memories?after={first['next']}",
                     f"/v1/users/e2e-pages/memories?category=GOAL&after={first['next'][:-1]}{'B' if first['next'][-1] != 'B' else 'C'}",
                     "/v1/users/e2e-pages/memories?after=%00%ff",
                     "/v1/users/e2e-pages/memories?after="):
            status, body, _ = s.request("GET", path)
            self.assertEqual(status, 400, path)
            self.assertEqual(body["error"]["code"], "invalid_argument")
            self.assertTrue(body["error"]["message"].startswith("after: "), body)

    def test_search_answers_every_asked_category(self):
        self.save_two_categories("e2e-search")
        status, body, _ = self.srv.request("POST", "/v1/users/e2e-search/memories/search",
                                           {"categories": ["FACT", "GOAL", "INTEREST"], "limit_per_category": 2})
        self.assertEqual(status, 200)
        self.assertEqual({k: len(v) for k, v in body["results"].items()}, {"FACT": 2, "GOAL": 2, "INTEREST": 0})

    def test_delete_within_a_category_or_any(self):
        s = self.srv
        self.save_two_categories("e2e-del")
        self.assertEqual(s.request("POST", "/v1/users/e2e-del/memories/delete", {"keys": ["FACT0", "GOAL0"], "category": "FACT"})[1], {"deleted": 1})
        self.assertEqual(s.request("POST", "/v1/users/e2e-del/memories/delete", {"keys": ["GOAL0"]})[1], {"deleted": 1})

    def test_last_entry_for_a_key_wins(self):
        items = [{"user_id": "e2e-lw", "category": "FACT", "key": "k", "value": v} for v in ("first", "second", "last")]
        self.assertEqual(self.srv.request("POST", "/v1/memories", {"memories": items})[1], {"saved": 1})
        self.assertEqual(self.srv.request("GET", "/v1/users/e2e-lw/memories")[1]["memories"][0]["value"], "last")

    def test_user_ids_needing_percent_encoding(self):
        s = self.srv
        for user in ("a/b", "with space", "100%", "ünïcödé ✓", "?&="):
            path = "/v1/users/" + quote(user)
            self.assertEqual(s.request("PUT", path + "/profile", {"profile": user})[0], 200, user)
            status, body, _ = s.request("GET", path + "/prefetch")
            self.assertEqual((status, body["user_id"], body["profile"]), (200, user, user))

    def test_bad_input_is_400_naming_the_field(self):
        s = self.srv
        cases = [
            ("PUT", "/v1/users/u/profile", None, b"{not json", "body"),
            ("PUT", "/v1/users/u/profile", {"profile": 5}, None, "profile: must be a string"),
            ("PUT", "/v1/users/u/profile", {}, None, "profile: missing"),
            ("PUT", "/v1/users/u/onboarding", {"state": [1]}, None, "state: must be a JSON object"),
            ("GET", "/v1/users/u/prefetch?memory_limit=101", None, None, "memory_limit"),
            ("GET", "/v1/users/u/prefetch?memory_limit=abc", None, None, "memory_limit"),
            ("GET", "/v1/users/" + "x" * 257 + "/prefetch", None, None, "user_id: must be 1 to 256 bytes"),
            ("GET", "/v1/users/bad%FF/prefetch", None, None, "user_id: is not valid UTF-8"),
            ("GET", "/v1/users/nul%00/prefetch", None, None, "user_id: contains a NUL byte"),
            ("GET", "/v1/users/bad%zz/prefetch", None, None, "malformed percent-encoding"),
            ("POST", "/v1/memories", {"memories": [{"user_id": "u", "category": "FACT", "key": "k"}]}, None, "memories[0].value: missing"),
            ("POST", "/v1/users/u/memories/search", {"categories": ["FACT"], "limit_per_category": 0}, None, "limit_per_category"),
            ("POST", "/v1/users/u/memories/delete", {"keys": "k"}, None, "keys: must be an array"),
            ("PUT", "/v1/users/u/profile", None, b'{"profile": "\xff"}', "body"),
        ]
        for method, path, body, raw, expected in cases:
            status, payload, _ = s.request(method, path, body, raw_body=raw)
            self.assertEqual(status, 400, (path, payload))
            self.assertEqual(payload["error"]["code"], "invalid_argument")
            self.assertIn(expected, payload["error"]["message"], path)

    def test_deeply_nested_json_is_400_and_the_server_stays_up(self):
        # Regression: a 100,000-deep onboarding state (1.2 MB) overflowed the stack and
        # killed the process. Every JSON body is parsed with a nesting limit of 128.
        s = self.srv
        for depth, path, make in [
            (100_000, "/v1/users/e2e-deep/onboarding", lambda d: '{"state":' + '{"a":' * d + '1' + '}' * d + '}'),
            (200, "/v1/users/e2e-deep/onboarding", lambda d: '{"state":' + '[' * d + ']' * d + '}'),
            (100_000, "/v1/memories", lambda d: '{"memories":' + '[' * d + ']' * d + '}'),
            (100_000, "/v1/users/e2e-deep/memories/search", lambda d: '[' * d + ']' * d),
        ]:
            method = "PUT" if path.endswith("onboarding") else "POST"
            status, payload, _ = s.request(method, path, raw_body=make(depth).encode())
            self.assertEqual(status, 400, (path, depth))
            self.assertEqual(payload["error"]["code"], "invalid_argument")
            self.assertIn("nested deeper than 128 levels", payload["error"]["message"])
        status, payload, _ = s.request("PUT", "/v1/users/e2e-deep/onboarding", raw_body=b'{"state":' + b'{"a":' * 100_000)
        self.assertEqual(status, 400)
        self.assertIn("state: nested deeper than 128 levels", payload["error"]["message"])
        # 127 levels inside the body's own object is the deepest accepted state, and it reads back.
        deepest = {"a": 1}
        for _ in range(126):
            deepest = {"a": deepest}
        self.assertEqual(s.request("PUT", "/v1/users/e2e-deep/onboarding", {"state": deepest})[0], 200)
        status, body, _ = s.request("GET", "/v1/users/e2e-deep/prefetch")
        self.assertEqual((status, body["onboarding"]), (200, deepest))
        self.assertEqual(s.request("GET", "/healthz")[0], 200)

    def test_a_body_with_one_invalid_item_writes_nothing(self):
        items = [{"user_id": "e2e-atomic", "category": "FACT", "key": f"k{i}", "value": "v"} for i in range(3)]
        items[2]["key"] = "k" * 300
        status, payload, _ = self.srv.request("POST", "/v1/memories", {"memories": items})
        self.assertEqual(status, 400)
        self.assertEqual(payload["error"]["message"], "memories[2].key: must be 1 to 256 bytes (got 300)")
        self.assertEqual(psql("SELECT count(*) FROM memories WHERE user_id = 'e2e-atomic'"), "0")

    def test_unknown_route_404_and_wrong_method_405(self):
        self.assertEqual(self.srv.request("GET", "/v2/nothing")[0], 404)
        status, payload, headers = self.srv.request("DELETE", "/v1/users/u/prefetch")
        self.assertEqual((status, headers.get("Allow")), (405, "GET, HEAD"))

    def test_head_answers_every_get_route_with_the_get_headers_and_no_body(self):
        self.srv.request("PUT", "/v1/users/e2e-head/profile", {"profile": "hello"})
        for path in ("/healthz", "/readyz", "/stats", "/metrics", "/v1/users/e2e-head/prefetch",
                     "/v1/profiles?ids=e2e-head", "/v1/users/e2e-head/memories"):
            conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
            conn.request("GET", path)
            got = conn.getresponse()
            get_body = got.read()
            conn.request("HEAD", path)
            head = conn.getresponse()
            self.assertEqual(head.read(), b"", path)
            conn.close()
            self.assertEqual((head.status, got.status), (200, 200), path)
            self.assertEqual(head.getheader("Content-Type"), got.getheader("Content-Type"), path)
            if path not in ("/stats", "/metrics"):  # counters move between the two requests
                self.assertEqual(int(head.getheader("Content-Length")), len(get_body), path)

    def test_every_response_carries_a_date(self):
        for method, path in (("GET", "/healthz"), ("GET", "/nowhere"), ("DELETE", "/stats"), ("PUT", "/v1/users/u/profile")):
            status, _, headers = self.srv.request(method, path, {})
            date = headers.get("Date")
            self.assertIsNotNone(date, (method, path, status))
            self.assertRegex(date, r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")

    def test_body_over_the_limit_is_413_before_it_is_read(self):
        sock = socket.create_connection(("127.0.0.1", self.srv.port))
        sock.sendall(b"POST /v1/memories HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 5242880\r\n\r\n")  # the body never comes
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])
        self.assertIn(b'"too_large"', data)

    def test_metrics_in_prometheus_format(self):
        self.srv.request("GET", "/v1/users/e2e-metrics/prefetch")
        status, text, headers = self.srv.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", headers["Content-Type"])
        self.assertIn("# TYPE dataloader_queries_total counter", text)
        self.assertIn('dataloader_loader_batch_size_bucket{loader="profiles",le="+Inf"}', text)
        self.assertIn('dataloader_http_request_duration_seconds_bucket{le="0.001"}', text)

    def test_metrics_exposition_follows_prometheus_conventions(self):
        self.srv.request("GET", "/v1/users/e2e-metrics/prefetch")
        self.srv.request("POST", "/v1/memories", {"memories": []})
        text = self.srv.request("GET", "/metrics")[1]
        families, types, helps, series = {}, {}, set(), set()
        sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
        for line in text.splitlines():
            if line.startswith("# HELP "):
                helps.add(line.split()[2])
            elif line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                self.assertNotIn(name, types, f"{name} typed twice")
                types[name] = kind
            elif line:
                m = sample.match(line)
                self.assertIsNotNone(m, line)
                name, labels, value = m.group(1), m.group(3) or "", m.group(4)
                float(value)
                key = (name, labels)
                self.assertNotIn(key, series, f"series repeats: {line}")
                series.add(key)
                family = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in types else name
                self.assertIn(family, types, f"{name} has no TYPE")
                families.setdefault(family, []).append((name, labels, float(value)))
        for name, kind in types.items():
            self.assertIn(name, helps, f"{name} has no HELP")
            self.assertTrue(name.startswith("dataloader_"), name)
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), f"counter {name} must end in _total")
                self.assertFalse(name.endswith("_total_total"), name)
            else:
                self.assertFalse(name.endswith("_total"), f"{kind} {name} must not end in _total")
            if kind == "histogram":
                by_labels = {}
                for sname, labels, value in families.get(name, []):
                    if sname.endswith("_bucket"):
                        rest = ",".join(l for l in labels.split(",") if not l.startswith("le="))
                        le = [l for l in labels.split(",") if l.startswith("le=")][0][4:-1]
                        by_labels.setdefault(rest, []).append((le, value))
                self.assertTrue(by_labels, f"histogram {name} has no buckets")
                for rest, buckets in by_labels.items():
                    self.assertEqual(buckets[-1][0], "+Inf", name)
                    values = [v for _, v in buckets]
                    self.assertEqual(values, sorted(values), f"{name}{{{rest}}} buckets not cumulative")
                    bounds = [float(b) for b, _ in buckets[:-1]]
                    self.assertEqual(bounds, sorted(bounds), name)
        self.assertIn("dataloader_operations_total", types)


class Operations(unittest.TestCase):
    def test_auth_with_no_wrong_and_right_token(self):
        srv = Server("--api-token", "s3cret")
        try:
            self.assertEqual(srv.request("GET", "/v1/profiles?ids=a")[0], 401)
            self.assertEqual(srv.request("GET", "/v1/profiles?ids=a", headers={"Authorization": "Bearer wrong"})[0], 401)
            self.assertEqual(srv.request("GET", "/v1/profiles?ids=a", headers={"Authorization": "Bearer s3cret"})[0], 200)
            self.assertEqual(srv.request("GET", "/stats")[0], 401)
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            self.assertEqual(srv.request("GET", "/readyz")[0], 200)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_a_client_sending_a_byte_a_second_cannot_hold_a_connection(self):
        srv = Server(env={"DATALOADER_HEADER_TIMEOUT_MS": "1000", "DATALOADER_IDLE_TIMEOUT_MS": "1000"})
        try:
            slow = socket.create_connection(("127.0.0.1", srv.port))
            started = time.time()
            closed = False
            for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":
                try:
                    slow.sendall(bytes([ch]))
                except OSError:
                    closed = True
                    break
                slow.settimeout(0.25)
                try:
                    if slow.recv(1) == b"":
                        closed = True
                        break
                except ConnectionResetError:  # closed with our last byte unread: a reset
                    closed = True
                    break
                except socket.timeout:
                    pass
            self.assertTrue(closed, "the slow client kept its connection")
            self.assertLess(time.time() - started, 5)
            slow.close()
            idle = socket.create_connection(("127.0.0.1", srv.port))
            idle.settimeout(5)
            self.assertEqual(idle.recv(1), b"")  # an idle connection is closed after the idle timeout
            idle.close()
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)  # others are served meanwhile
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_refuses_a_public_address_without_a_token(self):
        out = subprocess.run([SERVER, "serve", "--database-url", URL, "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 2)
        self.assertIn("without --api-token", out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1)

    def test_bad_options_exit_2_with_one_line(self):
        for args in (["serve", "--threads", "0"], ["serve", "--coalesce", "maybe"], ["serve", "--bogus", "1"], ["frobnicate"],
                     ["seed-demo", "--database-url", URL], ["serve", "--database-url", "host=x bogus_option=1"],
                     ["serve", "--database-url", URL, "--replica-url", "host=x bogus_option=1"],
                     ["serve", "--database-url", URL, "--max-replica-lag-ms", "soon"]):
            out = subprocess.run([SERVER, *args], capture_output=True, text=True, timeout=20)
            self.assertEqual(out.returncode, 2, args)
            self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
        out = subprocess.run([SERVER, "serve", "--database-url", URL], capture_output=True, text=True, timeout=20,
                             env={**os.environ, "DATALOADER_MAX_BATCH_SIZE": "zero"})
        self.assertEqual(out.returncode, 2)
        self.assertIn("DATALOADER_MAX_BATCH_SIZE", out.stderr)

    def test_sigterm_lets_a_slow_request_finish_and_exits_0(self):
        srv = Server()
        srv.request("PUT", "/v1/users/e2e-slow/profile", {"profile": "before"})
        # Hold the row lock so that the next write waits on it.
        locker = subprocess.Popen(["psql", "-X", "-q", "-d", URL, "-c",
                                   "BEGIN; SELECT * FROM profiles WHERE user_id = 'e2e-slow' FOR UPDATE; SELECT pg_sleep(1.5); COMMIT;"],
                                  stdout=subprocess.DEVNULL)
        time.sleep(0.3)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=srv.request("PUT", "/v1/users/e2e-slow/profile", {"profile": "after"})))
        t.start()
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        t.join(timeout=20)
        locker.wait(timeout=20)
        self.assertEqual(result["r"][0], 200)
        self.assertEqual(srv.proc.wait(timeout=20), 0)
        self.assertEqual(psql("SELECT profile FROM profiles WHERE user_id = 'e2e-slow'"), "after")

    def test_max_inflight_answers_503_with_retry_after(self):
        srv = Server("--max-inflight", "1")
        try:
            srv.request("PUT", "/v1/users/e2e-busy/profile", {"profile": "x"})
            locker = subprocess.Popen(["psql", "-X", "-q", "-d", URL, "-c",
                                       "BEGIN; SELECT * FROM profiles WHERE user_id = 'e2e-busy' FOR UPDATE; SELECT pg_sleep(1); COMMIT;"],
                                      stdout=subprocess.DEVNULL)
            time.sleep(0.3)
            t = threading.Thread(target=lambda: srv.request("PUT", "/v1/users/e2e-busy/profile", {"profile": "y"}))
            t.start()
            time.sleep(0.3)
            status, payload, headers = srv.request("GET", "/v1/profiles?ids=a")
            self.assertEqual((status, payload["error"]["code"]), (503, "unavailable"))
            self.assertEqual(headers.get("Retry-After"), "1")
            t.join(timeout=20)
            locker.wait(timeout=20)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_concurrent_prefetches_send_far_fewer_statements_than_4_per_request(self):
        srv = Server()
        try:
            for u in range(64):
                srv.request("PUT", f"/v1/users/e2e-c{u}/profile", {"profile": str(u)})
            before = srv.request("GET", "/stats")[1]["queries"]
            psql("SELECT pg_stat_statements_reset()")
            # 64 connections open first, then every request written at once.
            socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(64)]
            for u, sock in enumerate(socks):
                sock.sendall(f"GET /v1/users/e2e-c{u}/prefetch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            statuses = []
            for sock in socks:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                statuses.append(int(data.split(b" ", 2)[1]))
                sock.close()
            self.assertEqual(statuses, [200] * 64)
            queries = srv.request("GET", "/stats")[1]["queries"] - before
            counted = int(psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%' "
                               "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"))
            self.assertEqual(counted, queries)
            print(f"\n64 concurrent prefetches: {queries} statements (naive: 256)", file=sys.stderr)
            self.assertLess(queries, 2 * 64, f"{queries} statements for 64 prefetches")  # naive: 4 * 64
        finally:
            self.assertEqual(srv.stop(), 0)

    @unittest.skipUnless(PG_DIR, "needs the test fixture's own PostgreSQL (not TEST_DATABASE_URL)")
    def test_postgresql_down_gives_503_then_recovers_without_a_restart(self):
        srv = Server()
        ctl = os.path.join(ROOT, "scripts", "pg-server.sh")
        try:
            self.assertEqual(srv.request("GET", "/v1/users/e2e-down/prefetch")[0], 200)
            subprocess.run([ctl, "stop", PG_DIR], check=True)
            time.sleep(0.3)
            started = time.time()
            status, payload, headers = srv.request("GET", "/v1/users/e2e-down/prefetch")
            self.assertEqual((status, payload["error"]["code"]), (503, "unavailable"))
            self.assertEqual(headers.get("Retry-After"), "1")
            self.assertLess(time.time() - started, 3)
            self.assertEqual(srv.request("GET", "/readyz")[0], 503)
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            subprocess.run([ctl, "start", PG_DIR], check=True, stdout=subprocess.DEVNULL)
            deadline = time.time() + 10
            while time.time() < deadline and srv.request("GET", "/v1/users/e2e-down/prefetch")[0] != 200:
                time.sleep(0.2)
            self.assertEqual(srv.request("GET", "/v1/users/e2e-down/prefetch")[0], 200)
            self.assertEqual(srv.request("GET", "/readyz")[0], 200)
        finally:
            subprocess.run([ctl, "start", PG_DIR], stdout=subprocess.DEVNULL)
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
