#!/usr/bin/env python3
"""TLS to PostgreSQL: the built server against a private PostgreSQL that accepts only
encrypted TCP connections, with certificates from a throwaway CA made by openssl.

Run by CTest (label pg): tls_test.py SERVER_BINARY ENV_FILE. Starts its own PostgreSQL
(the fixture's is not touched), so ENV_FILE is read but unused.
"""
import concurrent.futures
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import PG_SERVER, Server, psql
from service import server_owner_user

OWNER_IS_POSTGRES = os.getuid() == 0  # as root, pg-server.sh runs the server as `postgres`


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory)


def make_server_cert(directory, ca):
    """A certificate for host name `localhost` only (not 127.0.0.1), signed by `ca`."""
    with open(os.path.join(directory, "san.cnf"), "w") as f:
        f.write("subjectAltName = DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.cnf", "-out", "server.crt", cwd=directory)


def give_to_server_owner(path, mode):
    os.chmod(path, mode)
    if OWNER_IS_POSTGRES:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


class TlsToPostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="dataloader-tls-")
        os.chmod(cls.work, 0o755)
        cls.certs = os.path.join(cls.work, "certs")
        os.mkdir(cls.certs)
        make_ca(cls.certs, "right-ca")
        make_ca(cls.certs, "wrong-ca")
        make_server_cert(cls.certs, "right-ca")
        cls.pg_dir = os.path.join(cls.work, "pg")
        cls.local_url = subprocess.run([PG_SERVER, "start", cls.pg_dir, "--fast"], check=True, capture_output=True,
                                       text=True).stdout.strip()
        data = os.path.join(cls.pg_dir, "data")
        for name in ("server.crt", "server.key"):
            shutil.copy(os.path.join(cls.certs, name), os.path.join(data, name))
            give_to_server_owner(os.path.join(data, name), 0o600)
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        # TCP only with TLS: a connection that is not encrypted is refused, so a test that
        # connects at all has proved encryption.
        hba = os.path.join(data, "pg_hba.conf")
        with open(hba) as f:
            rules = f.read()
        with open(hba, "w") as f:
            f.write("hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n" + rules)
        subprocess.run([PG_SERVER, "restart", cls.pg_dir], check=True)
        with open(os.path.join(cls.pg_dir, "port")) as f:
            cls.port = int(f.read())
        cls.user = server_owner_user()

    @classmethod
    def tearDownClass(cls):
        subprocess.run([PG_SERVER, "destroy", cls.pg_dir], check=False)
        shutil.rmtree(cls.work, ignore_errors=True)

    def url(self, host, sslmode, ca=None):
        url = f"postgresql://{self.user}@{host}:{self.port}/postgres?sslmode={sslmode}"
        if ca:
            url += f"&sslrootcert={os.path.join(self.certs, ca + '.crt')}"
        return url

    def serve_and_use(self, url):
        srv = Server(url=url)
        try:
            key = f"tls-{time.monotonic_ns()}"
            self.assertEqual(srv.request("PUT", f"/v1/users/{key}/profile", {"profile": "secret"})[0], 200)
            items = [{"user_id": key, "category": "FACT", "key": f"k{i}", "value": "v" * 3000} for i in range(200)]
            self.assertEqual(srv.request("POST", "/v1/memories", {"memories": items})[:2], (200, {"saved": 200}))
            status, body, _ = srv.request("GET", f"/v1/users/{key}/prefetch?memory_limit=100")
            self.assertEqual((status, body["profile"], body["memory_count"], len(body["recent_memories"])),
                             (200, "secret", 200, 100))
            # Concurrent large results: TLS records decrypted ahead of libpq's reads must
            # not leave a connection waiting on a socket that has nothing more to say.
            def reads(n):
                return [srv.request("GET", f"/v1/users/{key}/memories?limit=200", timeout=20)[0] for _ in range(n)]
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                statuses = sum(pool.map(reads, [20] * 16), [])
            self.assertEqual(statuses, [200] * 320)
            encrypted = psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                             "WHERE s.ssl AND a.application_name = 'asio-dataloader'", url=self.local_url)
            self.assertGreaterEqual(int(encrypted), 1)
        finally:
            self.assertEqual(srv.stop(), 0)

    def refused_with_reason(self, url):
        """The service runs, is not ready, and /readyz names the reason; returns it."""
        srv = Server(url=url, wait="healthz")
        try:
            deadline = time.monotonic() + 15
            message = ""
            while time.monotonic() < deadline:
                status, body, _ = srv.request("GET", "/readyz", timeout=10)
                self.assertEqual(status, 503)
                message = body["error"]["message"]
                if "starting" not in message:
                    break
                time.sleep(0.05)
            status, body, _ = srv.request("GET", "/v1/users/tls-x/prefetch", timeout=10)
            self.assertEqual((status, body["error"]["code"]), (503, "unavailable"))
            return message
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_sslmode_require_connects_and_serves(self):
        self.serve_and_use(self.url("127.0.0.1", "require"))

    def test_verify_full_with_the_right_ca_and_host_connects_and_serves(self):
        self.serve_and_use(self.url("localhost", "verify-full", "right-ca"))

    def test_verify_full_with_a_wrong_ca_is_refused_with_a_clear_reason(self):
        message = self.refused_with_reason(self.url("localhost", "verify-full", "wrong-ca"))
        print(f"\nwrong CA: {message}", file=sys.stderr)
        self.assertIn("certificate verify failed", message)

    def test_verify_full_with_a_wrong_host_name_is_refused_with_a_clear_reason(self):
        message = self.refused_with_reason(self.url("127.0.0.1", "verify-full", "right-ca"))
        print(f"\nwrong host: {message}", file=sys.stderr)
        self.assertIn('does not match host name "127.0.0.1"', message)

    def test_an_unencrypted_connection_is_refused_by_this_server_with_its_reason(self):
        message = self.refused_with_reason(self.url("127.0.0.1", "disable"))
        self.assertIn("no encryption", message)


if __name__ == "__main__":
    unittest.main(verbosity=2)
