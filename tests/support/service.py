"""Running dataloader-server and PostgreSQL from Python, for the server tests
(tests/http) and the benchmarks that drive whole processes (bench/soak.py,
bench/slowloris.py). Standard library only.
"""
import atexit
import http.client
import json
import os
import pwd
import signal
import socket
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_SERVER = os.path.join(ROOT, "scripts", "pg-server.sh")
NGINX_TEMPLATE = os.path.join(ROOT, "deploy", "nginx.conf.template")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(sql, url):
    out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-d", url, "-c", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


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


def raise_file_limit():
    """Lifts this process's soft open-file limit to its hard limit (children inherit it) and
    returns the limit now in force (None: unlimited)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return None if hard == resource.RLIM_INFINITY else hard


_running_servers = set()


@atexit.register
def _stop_leftover_servers():
    """A test that failed before its cleanup must not leave a server behind: it would hold
    the test runner's output pipe open, and ctest would wait for it until its timeout."""
    for server in list(_running_servers):
        server.stop()


class Server:
    """`binary serve` against `url` on a free loopback port, with `threads` threads (None:
    the server's default, one per core). Waits until /readyz says 200 (or only /healthz,
    with wait="healthz": for a database that is not there yet)."""

    def __init__(self, binary, url, *extra, threads=2, env=None, wait="readyz", stderr=subprocess.DEVNULL):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        thread_args = ["--threads", str(threads)] if threads else []
        self.proc = subprocess.Popen(
            [binary, "serve", "--database-url", url, "--listen", f"127.0.0.1:{self.port}", *thread_args, *extra],
            stderr=stderr, env={**os.environ, **(env or {})})
        _running_servers.add(self)
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

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self):
        _running_servers.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Nginx:
    """nginx with deploy/nginx.conf.template on a free loopback port, in front of
    `instances` ("host:port" strings): users by a consistent hash of their id, the rest
    round robin. Every answer names its instance in Dataloader-Instance."""

    def __init__(self, instances):
        self.dir = tempfile.mkdtemp(prefix="dataloader-nginx.")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        with open(NGINX_TEMPLATE) as f:
            conf = (f.read().replace("@PREFIX@", self.dir).replace("@LISTEN@", f"127.0.0.1:{self.port}")
                    .replace("@INSTANCES@", " ".join(f"server {i};" for i in instances)))
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", self.dir, "-c", path],
                                     stderr=subprocess.DEVNULL)
        _running_servers.add(self)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start: " + open(os.path.join(self.dir, "error.log")).read()[-2000:])

    def request(self, method, path, body=None, headers=None, raw_body=None, timeout=30):
        return request(self.port, method, path, body, headers, raw_body, timeout)

    def stop(self):
        _running_servers.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode


class PgControl:
    """Starts, stops, restarts, pauses and resumes a PostgreSQL made by scripts/pg-server.sh."""

    def __init__(self, directory):
        self.dir = directory

    def run(self, command, *args):
        return subprocess.run([PG_SERVER, command, self.dir, *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    def start(self, fast=True):
        """Creates the server on first use; returns its URL."""
        return self.run("start", *(["--fast"] if fast else []))

    def processes(self):
        """The postmaster first, then its children (backends, background workers)."""
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster] + [int(p) for p in children]

    def pause(self):
        """SIGSTOP to every process of the server: it stops answering, its sockets stay open."""
        self._signal_all(self.processes(), signal.SIGSTOP)

    def resume(self):
        self._signal_all(reversed(self.processes()), signal.SIGCONT)

    @staticmethod
    def _signal_all(pids, signum):
        # A running backend may exit between the listing and the signal (its client closed,
        # an autovacuum worker finished): there is nothing left to stop or resume then.
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def server_owner_user():
    """The role pg-server.sh's servers know: `postgres` as root, else the invoking user."""
    return "postgres" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name


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

    def url(self):
        return f"postgresql://{server_owner_user()}@127.0.0.1:{self.port}/postgres"



def tcp_port_of(url):
    """The TCP port of a pg-server.sh URL (its servers listen on 127.0.0.1 too)."""
    return int(urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["port"][0])
