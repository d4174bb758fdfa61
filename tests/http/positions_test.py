#!/usr/bin/env python3
"""Read-your-writes across instances over HTTP (SPEC "Beyond one process"): write answers
carry Dataloader-LSN, reads honour Dataloader-Min-LSN and answer with Dataloader-LSN. Two
instances of the built server on the test PostgreSQL.

Run by CTest (label pg): positions_test.py SERVER_BINARY ENV_FILE.
"""
import re
import unittest

from harness import Server, psql, quote

LSN = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")


def lsn_value(text):
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def lsn_text(value):
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def primary_now():
    return lsn_value(psql("SELECT pg_current_wal_insert_lsn()"))


class Positions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Server()
        cls.b = Server()

    @classmethod
    def tearDownClass(cls):
        for s in (cls.a, cls.b):
            s.stop()

    def test_every_write_answer_carries_a_position_past_its_commit(self):
        user = "lsn-writer"
        writes = [
            ("PUT", f"/v1/users/{user}/profile", {"profile": "p"}),
            ("PUT", f"/v1/users/{user}/onboarding", {"state": {"step": 1}}),
            ("POST", "/v1/memories", {"memories": [{"user_id": user, "category": "FACT", "key": "k", "value": "v"}]}),
            ("POST", f"/v1/users/{user}/memories/delete", {"keys": ["k"]}),
        ]
        last = 0
        for method, path, body in writes:
            before = primary_now()
            status, answer, headers = self.a.request(method, path, body)
            self.assertEqual(status, 200, (path, answer))
            position = headers.get("Dataloader-LSN")
            self.assertRegex(position or "", LSN, path)
            self.assertGreater(lsn_value(position), before, path)
            self.assertLessEqual(lsn_value(position), primary_now(), path)
            self.assertGreater(lsn_value(position), last, path)
            last = lsn_value(position)

    def test_a_read_with_the_writers_position_on_another_instance_sees_the_write(self):
        user = "lsn-reader"
        self.assertEqual(self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": "old"})[0], 200)
        self.assertEqual(self.b.request("GET", f"/v1/users/{user}/prefetch")[1]["profile"], "old")
        for round_ in range(20):
            value = f"new-{round_}"
            _, _, headers = self.a.request("PUT", f"/v1/users/{user}/profile", {"profile": value})
            token = {"Dataloader-Min-LSN": headers["Dataloader-LSN"]}
            reads = [
                ("GET", f"/v1/users/{user}/prefetch", None, lambda b: b["profile"]),
                ("GET", f"/v1/profiles?ids={quote(user)}", None, lambda b: b["profiles"][user]),
            ]
            for method, path, body, profile_of in reads:
                status, answer, got = self.b.request(method, path, body, headers=token)
                self.assertEqual(status, 200, answer)
                self.assertEqual(profile_of(answer), value, path)
                self.assertGreaterEqual(lsn_value(got["Dataloader-LSN"]), lsn_value(headers["Dataloader-LSN"]))

    def test_every_read_route_answers_with_a_position(self):
        user = "lsn-routes"
        token = {"Dataloader-Min-LSN": lsn_text(primary_now())}
        for method, path, body in [
            ("GET", f"/v1/users/{user}/prefetch", None),
            ("GET", f"/v1/profiles?ids={user}", None),
            ("GET", f"/v1/users/{user}/memories", None),
            ("POST", f"/v1/users/{user}/memories/search", {"categories": ["FACT"], "limit_per_category": 2}),
        ]:
            for headers in ({}, token):
                status, answer, got = self.b.request(method, path, body, headers=headers)
                self.assertEqual(status, 200, (path, answer))
                self.assertRegex(got.get("Dataloader-LSN", ""), LSN, path)
                if headers:
                    self.assertGreaterEqual(lsn_value(got["Dataloader-LSN"]), lsn_value(token["Dataloader-Min-LSN"]))

    def test_a_malformed_min_lsn_is_a_400_naming_the_header(self):
        for bad in ["", "0", "1/", "/1", "G/1", "1/2/3", "123456789/0", "-1/2", "1/2x"]:
            status, answer, _ = self.a.request("GET", "/v1/users/u/prefetch", headers={"Dataloader-Min-LSN": bad})
            self.assertEqual(status, 400, bad)
            self.assertEqual(answer["error"]["code"], "invalid_argument")
            self.assertTrue(answer["error"]["message"].startswith("Dataloader-Min-LSN: "), answer)

    def test_a_position_beyond_the_primarys_is_a_400_naming_the_header(self):
        future = lsn_text(primary_now() + (1 << 40))
        status, answer, _ = self.a.request("GET", "/v1/users/u/prefetch", headers={"Dataloader-Min-LSN": future})
        self.assertEqual(status, 400, answer)
        self.assertEqual(answer["error"]["message"].split(" is beyond")[0], f"Dataloader-Min-LSN: {future}")
        # Refused, not lost: the instance keeps serving.
        self.assertEqual(self.a.request("GET", "/v1/users/u/prefetch")[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
