"""The Node.js peer (bench/node/server.js) for bench/run.py: installs graphql/dataloader 2.2.3
and node-postgres into bench/.node once, and starts the server on a free loopback port."""
import os, re, shutil, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "..", ".node")
PACKAGES = ["dataloader@2.2.3", "pg@8.23.1"]


def available():
    """True when node and the packages are there (installing them if npm can)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return False
    modules = os.path.join(CACHE, "node_modules")
    if not (os.path.isdir(os.path.join(modules, "dataloader")) and os.path.isdir(os.path.join(modules, "pg"))):
        os.makedirs(CACHE, exist_ok=True)
        try:
            subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", CACHE, *PACKAGES],
                           check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError:
            return False
    return True


def tcp_url(url):
    """node-postgres wants host and port as URL parts: postgresql://user@/db?host=DIR&port=N."""
    host = re.search(r"host=([^&]+)", url).group(1)
    port = re.search(r"port=(\d+)", url).group(1)
    user = re.search(r"user=([^&]+)", url).group(1)
    return f"postgresql://{user}@/postgres?host={host}&port={port}"


class NodeServer:
    def __init__(self, port, url, workers=1, pool=None):
        self.base = f"http://127.0.0.1:{port}"
        args = ["node", os.path.join(HERE, "server.js"), str(port), tcp_url(url), "--workers", str(workers)]
        if pool:
            args += ["--pool", str(pool)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "NODE_PATH": os.path.join(CACHE, "node_modules")})
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("the Node.js peer did not start")

    def pids(self):
        """The server's processes (the cluster primary and its workers)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        return [self.proc.pid, *map(int, out)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
