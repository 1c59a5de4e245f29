"""feedsvc.federation.fetch against real HTTP servers on 127.0.0.1 (port 0): the private
address rule (refused before any request; redirect hops and a second DNS answer checked too),
the size cap, the deadline for a whole exchange, and what counts as a JSON document. Names
other than 127.0.0.1 exist only through a patched `fetch._resolve`; nothing leaves the
machine."""

from __future__ import annotations

import datetime as dt
import gzip
import http.server
import ipaddress
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

from feedsvc.errors import FetchError
from feedsvc.federation import fetch
from feedsvc.federation import keys
from feedsvc.federation.fetch import RemoteClient
from feedsvc.federation.fetch import is_public_address
from feedsvc.federation.signatures import sign_request
from feedsvc.federation.signatures import verify_request

DOCUMENT = {"id": "https://peer.example/users/alice", "type": "Person"}
REFUSED_LOOPBACK = "private address 127.0.0.1 refused (activitypub.allow_private_addresses is off)"
DEADLINE = 1.0  # the tests' shortened `timeout`
KEY_ID = "https://notes.example/ap/actors/all#main-key"


class Server:
    """A local HTTP/1.1 server whose paths each misbehave in one way; it counts requests and
    keeps what each one sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes, int]] = []
        self.stop = threading.Event()
        lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client dropped a connection it had given up on

            def do_GET(self) -> None:
                self.answer(b"")

            def do_POST(self) -> None:
                self.answer(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def answer(self, body: bytes) -> None:
                with lock:
                    server.requests.append((self.command, self.path, dict(self.headers.items()),
                                            body, self.client_address[1]))
                path = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(path.query, keep_blank_values=True))
                try:
                    ROUTES[path.path](self, query)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should have

            def send(self, status: int, body: bytes, *, length: int | None = None,
                     **headers: str) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        Route = Callable[[Handler, dict[str, str]], None]

        def document(h: Handler, q: dict[str, str]) -> None:
            h.send(200, json.dumps(DOCUMENT).encode(), Content_Type="application/activity+json")

        def redirect(h: Handler, q: dict[str, str]) -> None:
            h.send(int(q.get("status", "302")), b"", Location=q["to"])

        def loop(h: Handler, q: dict[str, str]) -> None:
            h.send(302, b"", Location="/loop")

        def status(h: Handler, q: dict[str, str]) -> None:
            code = int(q["code"])
            h.send(code, b"" if code == 204 else b'{"error": "no"}')

        def raw(h: Handler, q: dict[str, str]) -> None:
            h.send(200, q["body"].encode() * int(q.get("repeat", "1")))

        def big(h: Handler, q: dict[str, str]) -> None:
            h.send(200, b"[" + b"0," * (1024 * 1024) + b"0]")

        def big_unannounced(h: Handler, q: dict[str, str]) -> None:
            h.send_response(200)  # no Content-Length: the body ends when the connection does
            h.send_header("Connection", "close")
            h.end_headers()
            h.close_connection = True
            for _ in range(40):
                h.wfile.write(b" " * 65536)

        def gzip_bomb(h: Handler, q: dict[str, str]) -> None:
            packed = gzip.compress(b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}')
            h.send(200, packed, Content_Encoding="gzip")

        def gzipped(h: Handler, q: dict[str, str]) -> None:
            h.send(200, gzip.compress(json.dumps(DOCUMENT).encode()), Content_Encoding="gzip")

        def stall_body(h: Handler, q: dict[str, str]) -> None:
            h.send(200, b"{", length=100)  # then nothing more
            h.wfile.flush()
            server.stop.wait(30)

        def stall_headers(h: Handler, q: dict[str, str]) -> None:
            server.stop.wait(30)

        def trickle_body(h: Handler, q: dict[str, str]) -> None:
            h.send(200, b"", length=100_000)
            trickle(h)

        def trickle_headers(h: Handler, q: dict[str, str]) -> None:
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for i in range(300):  # one header every 0.2 s: each read succeeds, the whole never
                h.wfile.write(f"X-Slow-{i}: 1\r\n".encode())
                h.wfile.flush()
                if server.stop.wait(0.2):
                    return

        def trickle(h: Handler) -> None:
            for _ in range(300):
                h.wfile.write(b" ")
                h.wfile.flush()
                if server.stop.wait(0.2):
                    return

        def inbox(h: Handler, q: dict[str, str]) -> None:
            h.send(202, b"")

        def big_answer(h: Handler, q: dict[str, str]) -> None:
            h.send(200, b"x" * (1024 * 1024))

        ROUTES: dict[str, Route] = {
            "/doc": document, "/redirect": redirect, "/loop": loop, "/status": status,
            "/raw": raw, "/big": big, "/big-unannounced": big_unannounced,
            "/gzip-bomb": gzip_bomb, "/gzipped": gzipped, "/stall-body": stall_body,
            "/stall-headers": stall_headers, "/trickle-body": trickle_body,
            "/trickle-headers": trickle_headers, "/inbox": inbox, "/big-answer": big_answer,
        }
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def count(self) -> int:
        return len(self.requests)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture
def client() -> Iterator[RemoteClient]:
    remote = RemoteClient(allow_private=True, timeout=DEADLINE)
    yield remote
    remote.close()


@pytest.fixture
def strict_client() -> Iterator[RemoteClient]:
    remote = RemoteClient(allow_private=False, timeout=DEADLINE)
    yield remote
    remote.close()


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Fake DNS: `names[host]` lists the answers for `host`, the first one popped per lookup
    when there are several (so a test can change the answer between two lookups)."""
    table: dict[str, list[str]] = {}
    real = fetch._resolve

    def resolve(host: str, port: int) -> tuple[fetch.IPAddress, ...]:
        if host not in table:
            return real(host, port)
        answers = table[host]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer == "NXDOMAIN":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return (ipaddress.ip_address(answer),)

    monkeypatch.setattr(fetch, "_resolve", resolve)
    return table


def treat_loopback_as_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's test server stands in for a public server (127.0.0.1 passes the check)."""
    real = fetch.is_public_address
    monkeypatch.setattr(fetch, "is_public_address",
                        lambda ip: ip == ipaddress.ip_address("127.0.0.1") or real(ip))


def refusal(call: Callable[[], object]) -> FetchError:
    with pytest.raises(FetchError) as caught:
        call()
    return caught.value


# -- the address rule -----------------------------------------------------------------------

@pytest.mark.parametrize("address,public", [
    ("8.8.8.8", True), ("1.1.1.1", True), ("172.32.0.1", True),
    ("2001:4860:4860::8888", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
    ("127.0.0.1", False), ("127.1.2.3", False), ("::1", False), ("::ffff:127.0.0.1", False),
    ("10.0.0.1", False), ("172.16.0.1", False), ("172.31.255.255", False),
    ("192.168.1.1", False), ("::ffff:192.168.1.1", False), ("fc00::1", False), ("fd12::1", False),
    ("169.254.169.254", False), ("::ffff:169.254.169.254", False), ("fe80::1", False),
    ("100.64.0.1", False), ("100.127.255.254", False), ("::ffff:100.64.0.1", False),
    ("224.0.0.1", False), ("239.255.255.250", False), ("ff02::1", False),
    ("0.0.0.0", False), ("::", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("fec0::1", False), ("192.0.2.1", False), ("198.18.0.1", False), ("2001:db8::1", False),
    ("2002:7f00:1::", False), ("64:ff9b::7f00:1", False), ("::7f00:1", False),
])
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


def test_a_private_address_is_refused_without_a_request(server: Server,
                                                        strict_client: RemoteClient) -> None:
    url = f"{server.url}/doc"
    error = refusal(lambda: strict_client.get_json(url))
    assert (error.message, error.url) == (REFUSED_LOOPBACK, url)
    error = refusal(lambda: strict_client.post(f"{server.url}/inbox", b"{}", {}))
    assert error.message == REFUSED_LOOPBACK
    assert refusal(lambda: strict_client.check_url(url)).message == REFUSED_LOOPBACK
    assert server.count == 0


def test_a_name_resolving_to_a_private_address_is_refused(server: Server,
                                                          strict_client: RemoteClient,
                                                          names: dict[str, list[str]]) -> None:
    names["intranet.test"] = ["10.0.0.1"]
    names["metadata.test"] = ["169.254.169.254"]
    for host, address in (("intranet.test", "10.0.0.1"), ("metadata.test", "169.254.169.254")):
        error = refusal(lambda: strict_client.get_json(f"http://{host}/doc"))
        assert error.message == (f"private address {address} refused "
                                 f"(activitypub.allow_private_addresses is off)")
    assert server.count == 0


def test_private_addresses_are_allowed_when_configured(server: Server,
                                                       client: RemoteClient) -> None:
    assert client.get_json(f"{server.url}/doc") == DOCUMENT
    method, path, headers, _, _ = server.requests[0]
    assert (method, path) == ("GET", "/doc")
    assert headers["Accept"] == ('application/activity+json, application/ld+json; '
                                 'profile="https://www.w3.org/ns/activitystreams"')
    assert headers["User-Agent"] == "feedsvc"


@pytest.mark.parametrize("url,message", [
    ("ftp://127.0.0.1/doc", "scheme 'ftp' refused: http or https only"),
    ("file:///etc/passwd", "scheme 'file' refused: http or https only"),
    ("/ap/actors/all", "scheme '' refused: http or https only"),
    ("http:///doc", "no host"),
    ("http://127.0.0.1:99999/doc", "bad port"),
    ("http://nowhere.test/doc", "host nowhere.test does not resolve"),
])
def test_urls_that_are_not_fetched(url: str, message: str, client: RemoteClient,
                                   names: dict[str, list[str]]) -> None:
    names["nowhere.test"] = ["NXDOMAIN"]
    assert refusal(lambda: client.get_json(url)).message == message
    assert refusal(lambda: client.post(url, b"{}", {})).message == message


# -- redirects ------------------------------------------------------------------------------

def test_redirects_are_followed_and_each_hop_is_signed_again(server: Server,
                                                             client: RemoteClient) -> None:
    signed: list[tuple[str, str, bytes | None]] = []

    def sign(method: str, url: str, body: bytes | None) -> dict[str, str]:
        signed.append((method, url, body))
        return {"X-Signed-For": url}

    start = f"{server.url}/redirect?to=/redirect%3Fstatus%3D308%26to%3D/doc"
    assert client.get_json(start, sign=sign) == DOCUMENT
    assert signed == [("GET", start, None), ("GET", f"{server.url}/redirect?status=308&to=/doc",
                                             None), ("GET", f"{server.url}/doc", None)]
    assert [r[2]["X-Signed-For"] for r in server.requests] == [hop[1] for hop in signed]


def test_at_most_five_redirects(server: Server, client: RemoteClient) -> None:
    error = refusal(lambda: client.get_json(f"{server.url}/loop"))
    assert (error.message, error.url) == ("more than 5 redirects", f"{server.url}/loop")
    assert server.count == 6


def test_a_redirect_to_a_private_address_is_refused_without_a_request(
        server: Server, strict_client: RemoteClient, names: dict[str, list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    names["public.test"] = ["127.0.0.1"]
    names["private.test"] = ["10.0.0.1"]
    treat_loopback_as_public(monkeypatch)
    target = f"http://private.test:{server.port}/doc"
    start = f"http://public.test:{server.port}/redirect?to={urllib.parse.quote(target)}"
    error = refusal(lambda: strict_client.get_json(start))
    assert (error.message, error.url) == (
        "private address 10.0.0.1 refused (activitypub.allow_private_addresses is off)", target)
    assert [r[1] for r in server.requests] == [f"/redirect?to={urllib.parse.quote(target)}"]
    assert server.requests[0][2]["Host"] == f"public.test:{server.port}"


def test_the_connection_goes_to_the_address_that_was_checked(
        server: Server, strict_client: RemoteClient, names: dict[str, list[str]]) -> None:
    """DNS rebinding: the check sees a public answer, a second lookup a private one. The
    connection refuses it rather than trusting the first check."""
    names["rebind.test"] = ["8.8.8.8", "127.0.0.1"]
    error = refusal(lambda: strict_client.get_json(f"http://rebind.test:{server.port}/doc"))
    assert error.message == REFUSED_LOOPBACK
    assert server.count == 0


def test_a_post_does_not_follow_redirects(server: Server, client: RemoteClient) -> None:
    assert client.post(f"{server.url}/redirect?to=/inbox", b"{}", {}) == 302
    assert server.count == 1


# -- what comes back ------------------------------------------------------------------------

@pytest.mark.parametrize("code", [404, 410, 500, 204])
def test_a_status_other_than_2xx_with_a_body_is_refused(server: Server, client: RemoteClient,
                                                        code: int) -> None:
    error = refusal(lambda: client.get_json(f"{server.url}/status?code={code}"))
    if code == 204:  # 2xx, but no document
        assert error.message == "not JSON"
    else:
        assert error.message == f"answered HTTP {code}"


@pytest.mark.parametrize("body,message", [
    ("<html>hello</html>", "not JSON"),
    ("", "not JSON"),
    ("[1, 2]", "not a JSON object but list"),
    ('"a string"', "not a JSON object but str"),
    ("null", "not a JSON object but NoneType"),
    ("[" * 1000, "not JSON"),  # repeated 100 times: nested deeper than the parser goes
])
def test_only_a_json_object_is_a_document(server: Server, client: RemoteClient, body: str,
                                          message: str) -> None:
    repeat = 100 if body.startswith("[[") else 1
    url = f"{server.url}/raw?{urllib.parse.urlencode({'body': body, 'repeat': repeat})}"
    assert refusal(lambda: client.get_json(url)).message == message


def test_a_gzipped_document_is_decoded(server: Server, client: RemoteClient) -> None:
    assert client.get_json(f"{server.url}/gzipped") == DOCUMENT


@pytest.mark.parametrize("path", ["/big", "/big-unannounced", "/gzip-bomb"])
def test_a_body_over_1_mib_is_abandoned(server: Server, path: str) -> None:
    remote = RemoteClient(allow_private=True, timeout=10.0)
    started = time.monotonic()
    error = refusal(lambda: remote.get_json(f"{server.url}{path}"))
    assert error.message == "larger than 1 MiB"
    assert time.monotonic() - started < 5
    remote.close()


def test_the_cap_follows_max_bytes(server: Server) -> None:
    remote = RemoteClient(allow_private=True, max_bytes=32, timeout=DEADLINE)
    assert refusal(lambda: remote.get_json(f"{server.url}/doc")).message == "larger than 32 bytes"
    remote.close()


@pytest.mark.parametrize("path", ["/stall-headers", "/stall-body", "/trickle-body",
                                  "/trickle-headers"])
def test_a_slow_server_is_abandoned_at_the_deadline(server: Server, client: RemoteClient,
                                                    path: str) -> None:
    started = time.monotonic()
    error = refusal(lambda: client.get_json(f"{server.url}{path}"))
    elapsed = time.monotonic() - started
    assert error.message == "slower than 1 s"
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + 1


def test_a_slow_inbox_is_abandoned_at_the_deadline(server: Server,
                                                   client: RemoteClient) -> None:
    started = time.monotonic()
    error = refusal(lambda: client.post(f"{server.url}/trickle-headers", b"{}", {}))
    assert error.message == "slower than 1 s"
    assert time.monotonic() - started < DEADLINE + 1


def test_the_client_works_after_an_abandoned_exchange(server: Server,
                                                      client: RemoteClient) -> None:
    refusal(lambda: client.get_json(f"{server.url}/stall-body"))
    assert client.get_json(f"{server.url}/doc") == DOCUMENT


def test_connections_are_reused(server: Server, client: RemoteClient) -> None:
    for _ in range(3):
        assert client.get_json(f"{server.url}/doc") == DOCUMENT
    assert client.post(f"{server.url}/inbox", b"{}", {}) == 202
    assert len({r[4] for r in server.requests}) == 1  # one client port: one connection


# -- POST -----------------------------------------------------------------------------------

def test_a_signed_post_arrives_as_signed(server: Server, client: RemoteClient) -> None:
    private_pem, public_pem = keys.generate_key_pair()
    now = dt.datetime.now(dt.timezone.utc)
    body = b'{"type": "Accept"}'
    url = f"{server.url}/inbox"
    headers = sign_request("POST", url, key_id=KEY_ID, private_pem=private_pem, body=body,
                           now=now)
    headers["Content-Type"] = "application/activity+json"
    assert client.post(url, body, headers) == 202
    method, path, received, sent_body, _ = server.requests[0]
    assert (method, path, sent_body) == ("POST", "/inbox", body)
    assert received["Host"] == f"127.0.0.1:{server.port}"
    assert received["Content-Type"] == "application/activity+json"
    params = verify_request(method=method, target=path, headers=received, body=sent_body,
                            public_pem=public_pem, now=now)
    assert params.key_id == KEY_ID


def test_a_signed_get_arrives_as_signed(server: Server, client: RemoteClient) -> None:
    private_pem, public_pem = keys.generate_key_pair()
    now = dt.datetime.now(dt.timezone.utc)

    def sign(method: str, url: str, body: bytes | None) -> dict[str, str]:
        return sign_request(method, url, key_id=KEY_ID, private_pem=private_pem, body=body,
                            now=now)

    assert client.get_json(f"{server.url}/doc?page=1", sign=sign) == DOCUMENT
    method, path, received, _, _ = server.requests[0]
    assert "Digest" not in received
    params = verify_request(method=method, target=path, headers=received, body=b"",
                            public_pem=public_pem, now=now, require_digest=False)
    assert params.headers == ("(request-target)", "host", "date")


@pytest.mark.parametrize("path,status", [("/inbox", 202), ("/status?code=500", 500),
                                         ("/status?code=410", 410), ("/big-answer", 200)])
def test_post_returns_the_status(server: Server, client: RemoteClient, path: str,
                                 status: int) -> None:
    started = time.monotonic()
    assert client.post(f"{server.url}{path}", b'{"a": 1}', {}) == status
    assert time.monotonic() - started < DEADLINE
    assert server.requests[0][3] == b'{"a": 1}'


def test_a_refused_connection_is_a_fetch_error(client: RemoteClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/inbox"  # nothing listens there now
    error = refusal(lambda: client.post(url, b"{}", {}))
    assert (error.message, error.url) == ("request failed", url)
    assert refusal(lambda: client.get_json(url)).message == "request failed"


def test_a_post_answer_that_trickles_still_gives_its_status(server: Server,
                                                            client: RemoteClient) -> None:
    started = time.monotonic()
    assert client.post(f"{server.url}/trickle-body", b"{}", {}) == 200
    assert time.monotonic() - started < DEADLINE + 1
