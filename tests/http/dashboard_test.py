#!/usr/bin/env python3
"""The operator's dashboard (GET /dashboard) in a real browser: headless Chromium driven
by chromium-driver (tests/support/webdriver.py) against the built server under a little
load. The figures shown match /stats within one refresh, the chart is drawn, sections of
features that are off say so, the page fits a phone's width, it pauses while hidden, the
token prompt works with a wrong and a right token, and the console shows no error (but
the 401 a wrong token is answered with). A screenshot is written as a test artifact
(build/test-artifacts/dashboard.png; DASHBOARD_SCREENSHOT=path writes another copy, as for
docs/dashboard.png).

Run by CTest (label pg): dashboard_test.py SERVER_BINARY ENV_FILE. Skipped, saying why,
only where Chromium is not installed.
"""
import os
import threading
import time
import unittest

from harness import SERVER, URL, Server, quote, request

import webdriver

ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(SERVER)), "test-artifacts")
TOKEN = "dashboard-secret-token"
COUNTERS = {  # element id on the page -> its figure in /stats
    "total-requests": lambda s: s["http"]["requests"],
    "total-operations": lambda s: s["total_operations"],
    "total-loads": lambda s: s["loads"],
    "total-queries": lambda s: s["queries"],
    "total-saved": lambda s: s["queries_saved"],
}


class Load:
    """A little traffic of every kind, until stopped."""

    def __init__(self, server, headers=None):
        self.server, self.headers = server, headers or {}
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(3)]
        for t in self.threads:
            t.start()

    def run(self, i):
        n = 0
        while not self.done.is_set():
            n += 1
            user = quote(f"dash-{i}-{n % 40}")
            s, h = self.server, self.headers
            request(s.port, "GET", f"/v1/users/{user}/prefetch", headers=h)
            request(s.port, "GET", f"/v1/profiles?ids={user},dash-x,dash-y", headers=h)
            if n % 5 == 0:
                request(s.port, "POST", "/v1/memories", {"memories": [
                    {"user_id": f"dash-{i}-{n % 40}", "category": "FACT", "key": f"k{n % 7}", "value": str(n)}]}, headers=h)
            time.sleep(0.005)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join()


def errors_in(console, allowed=()):
    return [e for e in console if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allowed)]


@unittest.skipIf(webdriver.missing(), webdriver.missing() or "")
class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--cache-entries", "1000")
        cls.load = Load(cls.srv)
        cls.browser = webdriver.Browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.load.stop()
        cls.srv.stop()

    def open(self):
        b = self.browser
        b.get(f"{self.srv.base}/dashboard")
        b.wait_for("return document.getElementById('status').textContent === 'live'", what="the page to go live")
        return b

    def shown(self, element_id):
        return self.browser.execute("return document.getElementById(arguments[0]).dataset.value", element_id)

    def test_figures_match_stats_within_one_refresh_and_the_chart_is_drawn(self):
        b = self.open()
        b.wait_for("return Number(document.getElementById('chart').dataset.points) >= 4", seconds=20,
                   what="four points on the chart")
        for _ in range(3):
            before = self.srv.stats()
            time.sleep(1.3)  # the page refreshes at least once after `before`
            shown = {k: int(self.shown(k)) for k in COUNTERS}
            after = self.srv.stats()
            for k, figure in COUNTERS.items():
                self.assertLessEqual(figure(before), shown[k], k)
                self.assertLessEqual(shown[k], figure(after), k)
        # Numbers are formatted for people: thousands separated. Text and value are read in
        # one script: the page may refresh between two reads.
        text, value = b.execute("const e = document.getElementById('total-requests'); "
                                "return [e.textContent, e.dataset.value]")
        self.assertEqual(text, f"{int(value):,}")
        stats = self.srv.stats()
        self.assertEqual(b.execute("return document.getElementById('pool-in-use').textContent").split(" / ")[1],
                         str(stats["db"]["pool_size"]))
        # Every loader that batched is listed with its histogram.
        listed = b.execute("return [...document.querySelectorAll('[data-loader]')].map(e => e.dataset.loader)")
        self.assertIn("user_snapshots", listed)
        self.assertIn("profiles", listed)
        # The chart: each series drew pixels of its colour.
        counts = b.execute("""
            const c = document.getElementById('chart'), g = c.getContext('2d');
            const d = g.getImageData(0, 0, c.width, c.height).data;
            const near = (i, r, gr, bl) => Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - gr) < 40 && Math.abs(d[i + 2] - bl) < 40 && d[i + 3] > 200;
            let req = 0, stm = 0;
            for (let i = 0; i < d.length; i += 4) { if (near(i, 47, 111, 223)) req++; if (near(i, 224, 102, 27)) stm++; }
            return [req, stm];""")
        self.assertGreater(counts[0], 40, "requests/s line")
        self.assertGreater(counts[1], 40, "statements/s line")
        # Sections: cache on shows figures; no replica says so.
        self.assertFalse(b.execute("return document.getElementById('cache-on').hidden"))
        self.assertIn("No replicas configured", b.execute("return document.getElementById('replica-note').textContent"))
        self.assertEqual(b.execute("return document.querySelectorAll('#hosts tr[data-role]').length"), 1)
        try:
            b.set_size(1280, 1500)  # the whole page
            time.sleep(1.2)
            b.screenshot(os.path.join(ARTIFACTS, "dashboard.png"))
            if os.environ.get("DASHBOARD_SCREENSHOT"):
                b.screenshot(os.environ["DASHBOARD_SCREENSHOT"])
        finally:
            b.set_size(1280, 1000)
        self.assertEqual(errors_in(b.console()), [])

    def test_fits_a_phone_and_pauses_while_hidden(self):
        b = self.open()
        try:
            b.set_size(390, 844)
            time.sleep(0.3)
            width = b.execute("return [document.documentElement.scrollWidth, window.innerWidth]")
            self.assertLessEqual(width[0], width[1], "no horizontal scrolling at a phone's width")
            b.screenshot(os.path.join(ARTIFACTS, "dashboard-phone.png"))
        finally:
            b.set_size(1280, 1000)
        b.execute("""Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
                     document.dispatchEvent(new Event('visibilitychange'));""")
        self.assertEqual(b.execute("return document.getElementById('status').textContent"), "paused while hidden")
        at = b.execute("return document.getElementById('updated').dataset.at")
        requests = self.srv.stats()["http"]["requests"]
        time.sleep(2.5)
        self.assertEqual(b.execute("return document.getElementById('updated').dataset.at"), at, "no refresh while hidden")
        b.execute("""Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
                     document.dispatchEvent(new Event('visibilitychange'));""")
        b.wait_for("return document.getElementById('updated').dataset.at !== arguments[0]", at, what="a refresh once visible")
        self.assertGreater(self.srv.stats()["http"]["requests"], requests)
        self.assertEqual(errors_in(b.console()), [])


@unittest.skipIf(webdriver.missing(), webdriver.missing() or "")
class DashboardWithToken(unittest.TestCase):
    def test_asks_for_the_token_refuses_a_wrong_one_and_sends_it_as_a_header(self):
        # The primary given again as a replica: a second server row, shown as not read from.
        srv = Server("--api-token", TOKEN, "--replica-url", URL)
        load = Load(srv, {"Authorization": f"Bearer {TOKEN}"})
        try:
            with webdriver.Browser() as b:
                b.get(f"{srv.base}/dashboard")
                b.wait_for("return document.getElementById('auth').classList.contains('shown')", what="the token prompt")
                self.assertEqual(b.execute("return document.getElementById('status').textContent"), "needs the API token")
                self.assertEqual(self.unauthorized(srv), 0, "nothing asked of /stats before a token is given")
                submit = """document.getElementById('token').value = arguments[0];
                            document.getElementById('auth-submit').click();"""
                b.execute(submit, "wrong-token")
                message = b.wait_for("return document.getElementById('auth-message').textContent", what="a message")
                self.assertIn("refused this token", message)
                self.assertTrue(b.execute("return document.getElementById('auth').classList.contains('shown')"))
                b.execute(submit, TOKEN)
                b.wait_for("return document.getElementById('status').textContent === 'live'", what="live with the token")
                self.assertFalse(b.execute("return document.getElementById('auth').classList.contains('shown')"))
                self.assertGreater(int(b.execute("return document.getElementById('total-requests').dataset.value")), 0)
                self.assertNotIn(TOKEN, b.url())
                # Cache off: the section says so. Two servers, the second no standby.
                self.assertFalse(b.execute("return document.getElementById('cache-off').hidden"))
                hosts = b.wait_for("""const rows = [...document.querySelectorAll('#hosts tr[data-role]')];
                                      return rows.length === 2 && rows.map(r => r.cells[0].textContent);""", what="two servers")
                self.assertEqual(hosts, ["primary", "replica 1 (promoted: not read from)"])
                # A reload in the same tab keeps the token (sessionStorage): no prompt.
                b.get(f"{srv.base}/dashboard")
                b.wait_for("return document.getElementById('status').textContent === 'live'", what="live after reload")
                self.assertEqual(errors_in(b.console(), allowed=("401",)), [])
                b.screenshot(os.path.join(ARTIFACTS, "dashboard-token.png"))
        finally:
            load.stop()
            srv.stop()

    @staticmethod
    def unauthorized(srv):
        status, body, _ = request(srv.port, "GET", "/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        return body["http"]["responses_by_status"].get("401", 0)


if __name__ == "__main__":
    unittest.main()
