"""A small W3C WebDriver client for headless Chromium (Debian's chromium and
chromium-driver), enough for the dashboard's browser test: open a page, run script in it,
take screenshots, read the browser console.

    with Browser() as b:            # starts chromedriver on a free loopback port
        b.get("http://127.0.0.1:8080/dashboard")
        b.execute("return document.title")
"""
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from service import free_port

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def missing():
    """Why the browser cannot run here, or None."""
    if not CHROMIUM or not CHROMEDRIVER:
        return "Chromium is not installed (apt-get install chromium chromium-driver)"
    return None


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self, width=1280, height=1000):
        self.port = free_port()
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.time() > deadline or self.driver.poll() is not None:
                self.driver.kill()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.05)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                f"--window-size={width},{height}"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        try:
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except BaseException:
            self.driver.kill()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
        return False

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                payload = json.loads(res.read().decode() or "{}")
        except urllib.error.HTTPError as e:
            payload = json.loads(e.read().decode() or "{}")
            value = payload.get("value", {})
            raise WebDriverError(f"{method} {path}: {value.get('error')}: {value.get('message', '')[:500]}") from None
        return payload.get("value", payload)

    def _session(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self._session("POST", "/url", {"url": url})

    def url(self):
        return self._session("GET", "/url")

    def execute(self, script, *args):
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script, *args, seconds=15, what=None):
        """Runs `script` until it returns something truthy; returns that."""
        deadline = time.time() + seconds
        while True:
            value = self.execute(script, *args)
            if value:
                return value
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what or script}")
            time.sleep(0.05)

    def set_size(self, width, height):
        self._session("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path):
        png = base64.b64decode(self._session("GET", "/screenshot"))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)
        return path

    def console(self):
        """Browser console entries since the last call: [{level, message}]."""
        return self._session("POST", "/se/log", {"type": "browser"})

    def quit(self):
        try:
            self._session("DELETE", "")
        except (OSError, WebDriverError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
