"""What the Python tests of the built server share: the server under test, the test
PostgreSQL, and plain HTTP. Standard library only.

Every test script is run by CTest as `SCRIPT SERVER_BINARY ENV_FILE [unittest args]`;
importing this module takes the first two arguments (ENV_FILE is the fixture's: URL=, and
DIR= when the fixture started the server itself).
"""
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

SERVER = sys.argv.pop(1)
ENV_FILE = sys.argv.pop(1)
ENV = dict(line.strip().split("=", 1) for line in open(ENV_FILE) if "=" in line)
URL = ENV["URL"]
PG_DIR = ENV.get("DIR", "")  # empty: an external server (TEST_DATABASE_URL), never stopped or paused
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_SERVER = os.path.join(ROOT, "scripts", "pg-server.sh")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(sql, url=None):
    out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-d", url or URL, "-c", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def quote(s):
    return urllib.parse.quote(s, safe="")


def request(port, method, path, body=None, headers=None, raw_body=None, timeout=30):
    """One request on a fresh connection: (status, parsed JSON or text, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        res = conn.getresponse()
        text = res.read().decode()
    finally:
        conn.close()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = text
    return res.status, payload, dict(res.getheaders())


class Server:
    """dataloader-server serve on a free loopback port, 2 threads. Waits until /readyz says
    200 (or only /healthz, with wait="healthz": for a database that is not there yet)."""

    def __init__(self, *extra, env=None, url=None, wait="readyz", stderr=subprocess.DEVNULL):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SERVER, "serve", "--database-url", url or URL, "--listen", f"127.0.0.1:{self.port}", "--threads", "2",
             *extra],
            stderr=stderr, env={**os.environ, **(env or {})})
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.request("GET", f"/{wait}", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start (exit status {self.proc.returncode})")

    def request(self, method, path, body=None, headers=None, raw_body=None, timeout=30):
        return request(self.port, method, path, body, headers, raw_body, timeout)

    def stats(self):
        return self.request("GET", "/stats")[1]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class PgControl:
    """Stops, starts, pauses and resumes the test fixture's own PostgreSQL."""

    def __init__(self, directory=PG_DIR):
        self.dir = directory

    def run(self, command):
        subprocess.run([PG_SERVER, command, self.dir], check=True, stdout=subprocess.DEVNULL)

    def processes(self):
        """The postmaster first, then its children (backends, background workers)."""
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster] + [int(p) for p in children]

    def pause(self):
        """SIGSTOP to every process of the server: it stops answering, its sockets stay open."""
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in reversed(self.processes()):
            os.kill(pid, signal.SIGCONT)


class Relay:
    """A TCP relay on a loopback port to `target` (host, port): the server under test
    reaches PostgreSQL through it, so a test can break every connection at once (cut)
    without touching PostgreSQL, or have nothing listening yet (start later)."""

    def __init__(self, target, port=None):
        self.target = target
        self.port = port or free_port()
        self.listener = None
        self.sockets = []
        self.lock = threading.Lock()

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Resets every relayed connection (the listener keeps accepting)."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def stop(self):
        if self.listener:
            self.listener.close()
        self.cut()

    def url(self, extra=""):
        user = urllib.parse.parse_qs(urllib.parse.urlparse(URL).query).get("user", ["postgres"])[0]
        return f"postgresql://{user}@127.0.0.1:{self.port}/postgres{extra}"


def pg_tcp_port(url=None):
    """The TCP port of the test PostgreSQL (it listens on 127.0.0.1 too)."""
    return int(urllib.parse.parse_qs(urllib.parse.urlparse(url or URL).query)["port"][0])
