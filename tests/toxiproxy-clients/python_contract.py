"""Contract tests of `seawall chaos` through the PyPI package `toxiproxy-python`.

The client is used exactly as its users use it; where it hides a status code (it checks
the proxy list before creating, say), the same call is also made with `requests`, which
the package depends on anyway, so the server's own answer is checked too.

Run by tests/toxiproxy-clients/run.sh against a server on 127.0.0.1:$CHAOS_PORT.
"""

import os
import socket
import threading
import time
import unittest

import requests
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

PORT = int(os.environ.get("CHAOS_PORT", "8474"))
BASE = "http://127.0.0.1:%d" % PORT
APIConsumer.host = "127.0.0.1"
APIConsumer.port = PORT


class EchoServer:
    """A loopback TCP echo server on a free port, in a thread; every connection echoes
    what it reads until the peer closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def close(self):
        self.sock.close()


def host_port(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


def round_trip(address, payload=b"ping", timeout=5.0):
    """Sends `payload` through `address` and reads it back; returns (bytes, seconds)."""
    start = time.monotonic()
    with socket.create_connection(host_port(address), timeout=timeout) as conn:
        conn.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
    return got, time.monotonic() - start


class ToxiproxyPythonContract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = toxiproxy.Toxiproxy()
        cls.echo = EchoServer()

    @classmethod
    def tearDownClass(cls):
        cls.echo.close()

    def setUp(self):
        self.server.destroy_all()

    def tearDown(self):
        self.server.destroy_all()

    def create(self, name="echo"):
        return self.server.create(upstream=self.echo.address, name=name, listen="127.0.0.1:0")

    def test_running_and_version(self):
        self.assertTrue(self.server.running())
        version = self.server.version()
        self.assertTrue(version, "GET /version answered nothing")

    def test_create_list_get_and_the_real_listen_address(self):
        proxy = self.create()
        self.assertEqual(proxy.name, "echo")
        self.assertEqual(proxy.upstream, self.echo.address)
        self.assertTrue(proxy.enabled)
        host, port = host_port(proxy.listen)
        self.assertEqual(host, "127.0.0.1")
        self.assertNotEqual(port, 0, "port 0 must come back as the port actually bound")
        self.assertIn("echo", self.server.proxies())
        self.assertEqual(self.server.get_proxy("echo").listen, proxy.listen)
        self.assertIsNone(self.server.get_proxy("missing"))
        got, _ = round_trip(proxy.listen, b"hello through the proxy")
        self.assertEqual(got, b"hello through the proxy")

    def test_duplicates_are_409(self):
        self.create()
        with self.assertRaises(ProxyExists):
            self.create()
        # The package checks its list first; the server must say 409 itself too.
        r = requests.post(BASE + "/proxies", json={"name": "echo", "listen": "127.0.0.1:0",
                                                   "upstream": self.echo.address})
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json()["status"], 409)
        self.assertIn("error", r.json())

    def test_missing_things_are_404(self):
        with self.assertRaises(NotFound):
            APIConsumer.get("/proxies/missing")
        proxy = self.create()
        with self.assertRaises(NotFound):
            proxy.destroy_toxic("missing")
        r = requests.get(BASE + "/proxies/missing")
        self.assertEqual((r.status_code, r.json()["status"]), (404, 404))

    def test_toxic_crud_with_defaults(self):
        proxy = self.create()
        proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 0})
        toxics = proxy.toxics()
        self.assertEqual(list(toxics), ["latency_downstream"])
        toxic = toxics["latency_downstream"]
        self.assertEqual((toxic.type, toxic.stream, toxic.toxicity), ("latency", "downstream", 1.0))
        self.assertEqual(toxic.attributes["latency"], 100)
        # Names are unique per proxy, across both streams.
        r = requests.post(BASE + "/proxies/echo/toxics",
                          json={"name": "latency_downstream", "type": "latency", "stream": "upstream"})
        self.assertEqual(r.status_code, 409)
        # Updates merge attributes.
        r = requests.post(BASE + "/proxies/echo/toxics/latency_downstream",
                          json={"attributes": {"jitter": 5}})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["attributes"], {"latency": 100, "jitter": 5})
        self.assertTrue(proxy.destroy_toxic("latency_downstream"))
        self.assertEqual(proxy.toxics(), {})

    def test_latency_is_felt_and_removing_it_ends_it(self):
        proxy = self.create()
        _, before = round_trip(proxy.listen)
        proxy.add_toxic(type="latency", stream="downstream", attributes={"latency": 300})
        got, slow = round_trip(proxy.listen)
        self.assertEqual(got, b"ping")
        self.assertGreaterEqual(slow, 0.28, "a 300 ms latency toxic took only %.3fs" % slow)
        proxy.destroy_toxic("latency_downstream")
        _, after = round_trip(proxy.listen)
        self.assertLess(after, 0.25, "still slow after the toxic was removed: %.3fs" % after)
        self.assertLess(before, 0.25)

    def test_every_toxic_type_is_accepted_and_listed(self):
        proxy = self.create()
        kinds = {
            "latency": {"latency": 10, "jitter": 1},
            "bandwidth": {"rate": 1000},
            "slow_close": {"delay": 10},
            "timeout": {"timeout": 10},
            "reset_peer": {"timeout": 10},
            "slicer": {"average_size": 64, "size_variation": 8, "delay": 10},
            "limit_data": {"bytes": 1000},
            "noop": {},
        }
        for kind, attributes in kinds.items():
            proxy.add_toxic(type=kind, name=kind, stream="upstream", attributes=attributes)
        toxics = proxy.toxics()
        self.assertEqual(sorted(toxics), sorted(kinds))
        for kind, attributes in kinds.items():
            self.assertEqual(toxics[kind].type, kind)
            self.assertEqual(toxics[kind].stream, "upstream")
            for key, value in attributes.items():
                self.assertEqual(toxics[kind].attributes[key], value, (kind, key))

    def test_an_unknown_toxic_type_is_400(self):
        proxy = self.create()
        with self.assertRaises(InvalidToxic):
            proxy.add_toxic(type="not_a_toxic")
        r = requests.post(BASE + "/proxies/echo/toxics", json={"type": "not_a_toxic"})
        self.assertEqual((r.status_code, r.json()["status"]), (400, 400))

    def test_disable_closes_the_listener_and_enable_reopens_it(self):
        proxy = self.create()
        with proxy.down():
            self.assertFalse(self.server.get_proxy("echo").enabled)
            with self.assertRaises(OSError):
                round_trip(proxy.listen, timeout=1.0)
        self.assertTrue(self.server.get_proxy("echo").enabled)
        got, _ = round_trip(proxy.listen)
        self.assertEqual(got, b"ping")

    def test_reset_enables_every_proxy_and_removes_every_toxic(self):
        proxy = self.create()
        proxy.add_toxic(type="latency", attributes={"latency": 1000})
        proxy.disable()
        self.assertTrue(self.server.reset())
        again = self.server.get_proxy("echo")
        self.assertTrue(again.enabled)
        self.assertEqual(again.toxics(), {})
        got, took = round_trip(proxy.listen)
        self.assertEqual(got, b"ping")
        self.assertLess(took, 0.5)

    def test_populate_creates_and_keeps_identical_proxies(self):
        first = self.server.populate([
            {"name": "one", "upstream": self.echo.address, "listen": "127.0.0.1:0"},
            {"name": "two", "upstream": self.echo.address, "listen": "127.0.0.1:0"},
        ])
        self.assertEqual(sorted(p.name for p in first), ["one", "two"])
        self.assertEqual(sorted(self.server.proxies()), ["one", "two"])
        # The server's own /populate: an identical proxy (and its toxics) is kept as it is.
        one = self.server.get_proxy("one")
        one.add_toxic(type="latency", attributes={"latency": 5})
        r = requests.post(BASE + "/populate", json=[
            {"name": "one", "upstream": self.echo.address, "listen": one.listen},
        ])
        self.assertIn(r.status_code, (200, 201))
        self.assertIn("proxies", r.json())
        self.assertEqual(list(self.server.get_proxy("one").toxics()), ["latency_downstream"])
        # One bad entry: nothing is created.
        r = requests.post(BASE + "/populate", json=[
            {"name": "three", "upstream": self.echo.address, "listen": "127.0.0.1:0"},
            {"name": "", "upstream": self.echo.address, "listen": "127.0.0.1:0"},
        ])
        self.assertEqual(r.status_code, 400)
        self.assertNotIn("three", self.server.proxies())

    def test_destroy_removes_the_proxy_and_its_listener(self):
        proxy = self.create()
        self.assertTrue(self.server.destroy(proxy))
        self.assertIsNone(self.server.get_proxy("echo"))
        with self.assertRaises(OSError):
            round_trip(proxy.listen, timeout=1.0)

    def test_an_http_proxy_and_its_extra_field_are_read_by_the_client(self):
        # `protocol` is an extension, shown only on http proxies: the client must read
        # such a proxy like any other, and its toxics too.
        r = requests.post(BASE + "/proxies", json={"name": "web", "listen": "127.0.0.1:0",
                                                   "upstream": self.echo.address,
                                                   "protocol": "http"})
        self.assertEqual(r.status_code, 201)
        self.assertEqual(r.json()["protocol"], "http")
        proxy = self.server.get_proxy("web")
        self.assertEqual(proxy.listen, r.json()["listen"])
        self.assertIn("web", self.server.proxies())
        proxy.add_toxic(type="http_status", attributes={"status": 503})
        self.assertEqual([t.type for t in proxy.toxics().values()], ["http_status"])

    def test_a_browser_is_refused(self):
        r = requests.get(BASE + "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
        self.assertEqual(r.status_code, 403)


if __name__ == "__main__":
    unittest.main(verbosity=2)
