#!/usr/bin/env python3
"""Two instances behind nginx (deploy/nginx.conf.template), reading from the fixture's
replica: each user's requests land on one instance, everything else is spread over both,
and a user's own writes read back through nginx without any header.

Run by CTest (label pg, fixtures pg and pg_replica): cluster_test.py SERVER_BINARY ENV_FILE.
"""
import shutil
import unittest
from collections import Counter

from harness import ENV, Server, quote
from service import Nginx

REPLICA_URL = ENV.get("REPLICA_URL", "")


@unittest.skipUnless(REPLICA_URL and shutil.which("nginx"), "needs the fixture's replica and nginx")
class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.instances = [Server("--replica-url", REPLICA_URL) for _ in range(2)]
        cls.nginx = Nginx([f"127.0.0.1:{s.port}" for s in cls.instances])

    @classmethod
    def tearDownClass(cls):
        cls.nginx.stop()
        for s in cls.instances:
            s.stop()

    def instance_of(self, method, path, body=None):
        status, answer, headers = self.nginx.request(method, path, body)
        self.assertLess(status, 300, (path, answer))
        return headers["Dataloader-Instance"]

    def test_each_users_requests_land_on_one_instance_and_users_spread_over_both(self):
        chosen = {}
        for u in range(40):
            user = f"cluster-{u}/x" if u % 7 == 0 else f"cluster-{u}"  # percent-encoded ids too
            path = f"/v1/users/{quote(user)}"
            seen = {self.instance_of("GET", f"{path}/prefetch"),
                    self.instance_of("PUT", f"{path}/profile", {"profile": "p"}),
                    self.instance_of("GET", f"{path}/memories"),
                    self.instance_of("POST", f"{path}/memories/search", {"categories": ["FACT"], "limit_per_category": 1})}
            self.assertEqual(len(seen), 1, user)
            chosen[user] = seen.pop()
        counts = Counter(chosen.values())
        self.assertEqual(len(counts), 2, counts)
        self.assertGreaterEqual(min(counts.values()), 8, counts)  # a hash, not everything on one

    def test_other_routes_take_turns(self):
        seen = Counter(self.instance_of("GET", "/v1/profiles?ids=a,b") for _ in range(10))
        self.assertEqual(len(seen), 2, seen)

    def test_a_users_write_reads_back_through_nginx_without_a_header(self):
        for round_ in range(30):
            user = f"cluster-ryw-{round_ % 3}"
            value = f"v{round_}"
            status, _, _ = self.nginx.request("PUT", f"/v1/users/{user}/profile", {"profile": value})
            self.assertEqual(status, 200)
            status, body, _ = self.nginx.request("GET", f"/v1/users/{user}/prefetch")
            self.assertEqual((status, body["profile"]), (200, value))


if __name__ == "__main__":
    unittest.main(verbosity=2)
