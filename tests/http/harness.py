"""What the Python tests of the built server share (tests/support/service.py), bound to
the server under test and the test PostgreSQL.

Every test script is run by CTest as `SCRIPT SERVER_BINARY ENV_FILE [unittest args]`;
importing this module takes the first two arguments (ENV_FILE is the fixture's: URL=, and
DIR= when the fixture started the server itself).
"""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import service  # noqa: E402
from service import PG_SERVER, ROOT, Relay, free_port, raise_file_limit, request, tcp_port_of  # noqa: E402,F401

SERVER = sys.argv.pop(1)
ENV_FILE = sys.argv.pop(1)
ENV = dict(line.strip().split("=", 1) for line in open(ENV_FILE) if "=" in line)
URL = ENV["URL"]
PG_DIR = ENV.get("DIR", "")  # empty: an external server (TEST_DATABASE_URL), never stopped or paused


def psql(sql, url=None):
    return service.psql(sql, url or URL)


def quote(s):
    return urllib.parse.quote(s, safe="")


class Server(service.Server):
    """The server under test, on the test PostgreSQL unless `url` says otherwise."""

    def __init__(self, *extra, url=None, **kw):
        super().__init__(SERVER, url or URL, *extra, **kw)


class PgControl(service.PgControl):
    """The test fixture's own PostgreSQL."""

    def __init__(self):
        super().__init__(PG_DIR)


def pg_tcp_port():
    return tcp_port_of(URL)
