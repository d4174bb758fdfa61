#!/usr/bin/env python3
"""The server's limits at their stated values: 10,000 connections, the 16 KiB request
head, the head and write timeouts. The built server, the test PostgreSQL, real sockets.

Run by CTest (label pg): limits_test.py SERVER_BINARY ENV_FILE.
"""
import json
import socket
import sys
import time
import unittest

from harness import Server, raise_file_limit

MAX_CONNECTIONS = 10_000
MAX_HEAD = 16 * 1024


def read_response(sock, timeout=10):
    """Status and body of one response on `sock` (Content-Length framed)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} bytes")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def closed_by_peer(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class ConnectionLimit(unittest.TestCase):
    def test_the_connection_past_10000_is_closed_at_once_while_the_others_are_served(self):
        # Each process (this one, and the server, which inherits it) needs a descriptor per
        # connection.
        limit = raise_file_limit()
        if limit is not None and limit < MAX_CONNECTIONS + 500:
            self.skipTest(f"the hard open-file limit ({limit}) is below {MAX_CONNECTIONS + 500}")
        # Connections that send nothing are held past the default head timeout (10 s) on a
        # slow (sanitizer) build.
        srv = Server(env={"DATALOADER_HEADER_TIMEOUT_MS": "300000"})
        held = []
        try:
            # Statistics come over one keep-alive connection, the first of the 10,000: a
            # connection per question would race the server's count of closed ones.
            monitor = socket.create_connection(("127.0.0.1", srv.port))
            held.append(monitor)

            def open_connections():
                monitor.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
                return json.loads(read_response(monitor)[1])["http"]["connections"]

            deadline = time.monotonic() + 10
            while open_connections() > 1 and time.monotonic() < deadline:  # the start-up probes close
                time.sleep(0.05)
            started = time.monotonic()
            for _ in range(MAX_CONNECTIONS - 1):
                held.append(socket.create_connection(("127.0.0.1", srv.port)))
            deadline = time.monotonic() + 30
            while open_connections() < MAX_CONNECTIONS and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(open_connections(), MAX_CONNECTIONS)
            rss = srv.rss_kib()
            print(f"\n{MAX_CONNECTIONS} connections open in {time.monotonic() - started:.1f} s; "
                  f"server RSS {rss / 1024:.0f} MiB, {srv.open_fds()} descriptors", file=sys.stderr)
            past = socket.create_connection(("127.0.0.1", srv.port))
            self.assertTrue(closed_by_peer(past, timeout=5), "the connection past the limit was kept")
            past.close()
            # The others keep being served, oldest and newest alike.
            for sock in (held[1], held[len(held) // 2], held[-1]):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(read_response(sock)[0], 200)
            for sock in held[1:101]:
                sock.close()
            del held[1:101]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # room again: a new connection is served
                try:
                    if srv.request("GET", "/healthz", timeout=2)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            self.assertGreaterEqual(srv.stats()["http"]["rejected_connections"], 1)
        finally:
            for sock in held:
                sock.close()
            self.assertEqual(srv.stop(), 0)


class HeadLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env={"DATALOADER_HEADER_TIMEOUT_MS": "1000", "DATALOADER_IDLE_TIMEOUT_MS": "5000",
                              "DATALOADER_WRITE_TIMEOUT_MS": "1000"})

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0

    def raw(self, data):
        sock = socket.create_connection(("127.0.0.1", self.srv.port))
        try:
            sock.sendall(data)
            return read_response(sock)
        finally:
            sock.close()

    def test_a_head_over_16_kib_is_431_with_the_json_error(self):
        headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 100) for i in range(200))  # 22 KiB
        status, body = self.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        self.assertEqual(status, 431)
        self.assertIn(b'"code":"too_large"', body)
        self.assertIn(b"request head (request line and headers) over the limit of 16384 bytes", body)
        # Just under the limit is served.
        headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 100) for i in range(140))  # 15.6 KiB
        self.assertEqual(self.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")[0], 200)

    def test_a_request_target_over_the_head_limit_is_431_too(self):
        target = b"/v1/profiles?ids=" + b"a," * (MAX_HEAD // 2)
        status, body = self.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status, 431)
        self.assertIn(b'"code":"too_large"', body)

    def test_a_keep_alive_connection_dribbling_its_next_head_is_cut_at_the_head_timeout(self):
        sock = socket.create_connection(("127.0.0.1", self.srv.port))
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(sock)[0], 200)
            before = self.srv.stats()["http"]["timed_out_connections"]
            started = time.monotonic()
            closed = False
            for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                try:
                    sock.sendall(bytes([ch]))
                except OSError:
                    closed = True
                    break
                if closed_by_peer(sock, timeout=0.2):
                    closed = True
                    break
            took = time.monotonic() - started
            self.assertTrue(closed, "the dribbling client kept its connection")
            # The head timeout (1 s) applies from the first byte, not the idle timeout (5 s).
            self.assertLess(took, 4.0)
            # Counted once the server's read has completed with the timeout, just after
            # the close the client saw.
            deadline = time.monotonic() + 5
            while self.srv.stats()["http"]["timed_out_connections"] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertGreater(self.srv.stats()["http"]["timed_out_connections"], before)
        finally:
            sock.close()

    def test_a_client_that_never_reads_holds_bounded_memory_and_is_cut_off_after_the_write_timeout(self):
        user = "limits-reader"
        big = "v" * 8000
        items = [{"user_id": user, "category": "FACT", "key": f"k{i}", "value": big} for i in range(1000)]
        for i in range(0, len(items), 250):  # 2 MB per request, under the body limit
            self.assertEqual(self.srv.request("POST", "/v1/memories", {"memories": items[i:i + 250]})[0], 200)
        one = len(self.srv.request("GET", f"/v1/users/{user}/memories?limit=1000")[1]["memories"])
        self.assertEqual(one, 1000)  # each response is about 8 MB
        rss_before = self.srv.rss_kib()
        before = self.srv.stats()["http"]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.srv.port))
        try:
            # 40 pipelined requests, about 320 MB of answers, none of it read.
            sock.sendall(f"GET /v1/users/{user}/memories?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 40)
            peak = rss_before
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                peak = max(peak, self.srv.rss_kib())
                stats = self.srv.stats()["http"]
                if stats["timed_out_connections"] > before["timed_out_connections"]:
                    break
                time.sleep(0.1)
            stats = self.srv.stats()["http"]
            self.assertGreater(stats["timed_out_connections"], before["timed_out_connections"],
                               "the connection was not cut off after the write timeout")
            growth_mib = (peak - rss_before) / 1024
            print(f"\nnon-reading client: server RSS grew {growth_mib:.1f} MiB at most (answers pending: ~320 MB)",
                  file=sys.stderr)
            self.assertLess(growth_mib, 64)  # one response and its JSON, not forty
            self.assertTrue(closed_by_peer_after_draining(sock))
        finally:
            sock.close()


def closed_by_peer_after_draining(sock):
    """Reads what the kernel kept for us; true when the stream ends (or resets) early."""
    sock.settimeout(5)
    received = 0
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    return received < 40 * 8_000_000


if __name__ == "__main__":
    unittest.main(verbosity=2)
