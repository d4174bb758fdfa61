"""What the whole-service benchmarks share: a private PostgreSQL (and replicas of it)
seeded with demo users, the built server, and a results file under bench/results/.

    with Scenario("cache", build, users=100000, rounds=3) as sc:
        sc.results["mixed"] = ...   # sc.url, sc.binary; sc.replica() for a streaming replica
    print(sc.saved)                  # bench/results/cache-<date>.json
"""
import datetime, json, os, statistics, subprocess, tempfile

from run import sh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_SERVER = os.path.join(ROOT, "scripts", "pg-server.sh")


def medians(rounds, skip=()):
    """Each numeric figure of the rounds' results (dicts of one shape), as its median."""
    return {k: statistics.median(r[k] for r in rounds) for k, v in rounds[0].items()
            if isinstance(v, (int, float)) and k not in skip}


class Scenario:
    def __init__(self, name, build, users, memories_per_user=None, save=True, **header):
        self.name, self.users, self.memories_per_user, self.save = name, users, memories_per_user, save
        self.binary = os.path.join(build, "dataloader-server")
        self.results = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "cores": os.cpu_count(),
                        "users": users, **header}
        self.saved = None
        self._servers = []

    def __enter__(self):
        self.base = tempfile.mkdtemp(prefix=f"asio-dataloader-{self.name}-bench.")
        os.chmod(self.base, 0o755)  # PostgreSQL runs as postgres when this runs as root
        self.url = self._start("primary", "start", "--fast")
        try:
            seed = [self.binary, "seed-demo", "--database-url", self.url, "--users", str(self.users)]
            if self.memories_per_user is not None:
                seed += ["--memories-per-user", str(self.memories_per_user)]
            subprocess.run(seed, check=True, capture_output=True)
            self.psql("VACUUM ANALYZE")  # plans for the seeded rows, as in production
        except BaseException:
            self._destroy()
            raise
        return self

    def replica(self, name="replica"):
        """A streaming replica of the primary, started now."""
        return self._start(name, "replica", os.path.join(self.base, "primary"))

    def psql(self, sql):
        return sh("psql", "-X", "-q", "-At", "-d", self.url, "-c", sql)

    def __exit__(self, kind, value, tb):
        self._destroy()
        if kind is None and self.save:
            os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
            self.saved = os.path.join(ROOT, "bench", "results", f"{self.name}-{self.results['date'][:10]}.json")
            with open(self.saved, "w") as f:
                json.dump(self.results, f, indent=2)
        return False

    def _start(self, name, command, *args):
        directory = os.path.join(self.base, name)
        if command == "replica":
            url = sh(PG_SERVER, command, *args, directory).strip()
        else:
            url = sh(PG_SERVER, command, directory, *args).strip()
        self._servers.append(directory)
        return url

    def _destroy(self):
        for directory in reversed(self._servers):
            subprocess.run([PG_SERVER, "destroy", directory], capture_output=True)
        self._servers.clear()
