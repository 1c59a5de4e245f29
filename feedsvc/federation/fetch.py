"""The only way federation talks to other servers: GET a JSON document (signed when asked) and
POST to an inbox, through one pooled requests.Session. Every URL and every redirect hop is
checked before any request (http/https, a host that resolves, public addresses only unless
activitypub.allow_private_addresses), and the connection then goes to the addresses that were
checked, so a second DNS answer cannot point it elsewhere. Bodies are capped, and one deadline
covers a whole exchange. Decides nothing about ActivityPub itself."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import NameResolutionError
from urllib3.exceptions import NewConnectionError
from urllib3.util.connection import create_connection

from feedsvc.errors import FetchError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Signer = Callable[[str, str, bytes | None], dict[str, str]]

ACTIVITY_ACCEPT = ('application/activity+json, '
                   'application/ld+json; profile="https://www.w3.org/ns/activitystreams"')
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
POST_ANSWER_BYTES = 64 * 1024  # read (then dropped) so the connection can be reused
CHUNK_BYTES = 64 * 1024

# Ranges the ipaddress properties below do not all cover (and whose coverage changed between
# Python versions): shared address space (CGNAT), IETF assignments, the 6to4 relay, benchmark
# and class E space; NAT64, discard, Teredo, documentation, 6to4 and site-local in IPv6.
# Mastodon's PrivateAddressCheck refuses the same ranges.
_REFUSED_NETWORKS = tuple(ipaddress.ip_network(network) for network in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
    "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32", "2001:10::/28", "2001:20::/28",
    "2001:db8::/32", "2002::/16", "fec0::/10",
))


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip` is an ordinary address on the internet: not loopback, private, link-local,
    multicast, unspecified, reserved, CGNAT, site-local, nor an IPv4-mapped IPv6 of those."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public_address(ip.ipv4_mapped)
    if (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_unspecified or ip.is_reserved):
        return False
    return not any(ip in network for network in _REFUSED_NETWORKS)


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address `host` resolves to, in the resolver's order (OSError when none)."""
    found: dict[IPAddress, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        found[ipaddress.ip_address(sockaddr[0])] = None
    if not found:
        raise socket.gaierror(f"no address for {host}")
    return tuple(found)


def _refusal(ip: IPAddress) -> str:
    return f"private address {ip} refused (activitypub.allow_private_addresses is off)"


def _describe_bytes(count: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


class _AddressRefusedError(Exception):
    """Raised inside urllib3 when a connection would go to a refused address; it passes
    through urllib3 and requests untouched and becomes a FetchError at the boundary."""

    def __init__(self, address: IPAddress) -> None:
        self.address = address
        super().__init__(_refusal(address))


class _Exchange:
    """One request and its answer (with its redirect hops) under one deadline. While it is
    current on a thread, connections check addresses by its rule and register their sockets;
    at the deadline a timer shuts those sockets down, which wakes a read that a trickling
    server keeps alive (a per-read timeout alone never would)."""

    def __init__(self, *, allow_private: bool, timeout: float) -> None:
        self.allow_private = allow_private
        self.deadline = time.monotonic() + timeout
        self.expired = False
        self._lock = threading.Lock()
        self._done = False
        self._connections: list[object] = []
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def watch(self, connection: object = None, sock: socket.socket | None = None) -> None:
        with self._lock:
            if connection is not None:
                self._connections.append(connection)
            if sock is not None:
                self._sockets.append(sock)

    def close(self, response: requests.Response) -> None:
        """Close a response, forgetting its connection first: back in the pool it may serve
        another thread's exchange, which this one's deadline must not touch."""
        with self._lock:
            self._connections.clear()
            self._sockets.clear()
        response.close()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in [*self._sockets, *(getattr(c, "sock", None) for c in self._connections)]:
                if sock is not None and sock.fileno() != -1:
                    try:
                        # the plain socket's shutdown, also for a TLS socket: it only ends the
                        # stream under the blocked reader, which then sees EOF or an error
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass  # already closed or never connected: nothing left to wake

    def __enter__(self) -> _Exchange:
        _current.exchange = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        _current.exchange = None


class _Current(threading.local):
    exchange: _Exchange | None = None


_current = _Current()


def _open_socket(connection: HTTPConnection) -> socket.socket:
    """urllib3's `_new_conn`, resolving with `_resolve` and refusing (unless the exchange
    allows them) private addresses before connecting to the very addresses it checked."""
    exchange = _current.exchange
    try:
        addresses = _resolve(connection.host, connection.port)
    except (OSError, UnicodeError) as e:
        raise NameResolutionError(connection.host, connection, socket.gaierror(str(e))) from e
    if exchange is None or not exchange.allow_private:
        for ip in addresses:
            if not is_public_address(ip):
                raise _AddressRefusedError(ip)
    error: OSError | None = None
    for ip in addresses:
        try:
            sock = create_connection((str(ip), connection.port), connection.timeout,
                                     source_address=connection.source_address,
                                     socket_options=connection.socket_options)
        except TimeoutError as e:
            raise ConnectTimeoutError(connection, f"connection to {connection.host} timed out "
                                                  f"(connect timeout={connection.timeout})") from e
        except OSError as e:
            error = e
            continue
        if exchange is not None:
            exchange.watch(sock=sock)
        return sock
    raise NewConnectionError(connection, f"failed to establish a new connection: {error}")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _open_socket(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _open_socket(self)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        if _current.exchange is not None:
            _current.exchange.watch(connection=connection)  # a reused one too
        return connection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        if _current.exchange is not None:
            _current.exchange.watch(connection=connection)
        return connection


class _GuardedAdapter(HTTPAdapter):
    """requests' adapter with pools whose connections go through `_open_socket`."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool,
                                                   "https": _GuardedHTTPSPool}


class RemoteClient:
    """HTTP to other servers for federation, by the rules in the module docstring. One per
    process; safe to share between threads (each exchange is its own)."""

    def __init__(self, *, allow_private: bool, timeout: float = 10.0,
                 max_bytes: int = 1024 * 1024, user_agent: str = "feedsvc") -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy, netrc or CA bundle from the environment
        self._session.headers["User-Agent"] = user_agent
        adapter = _GuardedAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def check_url(self, url: str) -> None:
        """FetchError unless `url` is http(s) with a host that resolves, only to public
        addresses (any address, with allow_private)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(url, f"scheme {parts.scheme[:20]!r} refused: http or https only")
        host = parts.hostname
        if not host:
            raise FetchError(url, "no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise FetchError(url, "bad port") from e
        try:
            addresses = _resolve(host, port)
        except (OSError, UnicodeError) as e:
            raise FetchError(url, f"host {host[:100]} does not resolve") from e
        if not self.allow_private:
            for ip in addresses:
                if not is_public_address(ip):
                    raise FetchError(url, _refusal(ip))

    def get_json(self, url: str, *, sign: Signer | None = None,
                 accept: str = ACTIVITY_ACCEPT) -> dict[str, Any]:
        """The JSON object at `url`, redirects followed by hand (at most 5, each hop checked
        and signed again); FetchError when refused, unreachable, not 2xx, over `max_bytes`,
        slower than `timeout` in all, or not a JSON object."""
        current = url
        with _Exchange(allow_private=self.allow_private, timeout=self.timeout) as exchange:
            for _ in range(MAX_REDIRECTS + 1):
                self.check_url(current)
                headers = {"Accept": accept, **(sign("GET", current, None) if sign else {})}
                response = self._send(exchange, "GET", current, headers, None)
                location = response.headers.get("Location")
                if response.status_code in REDIRECT_STATUSES and location:
                    exchange.close(response)
                    current = urljoin(current, location)
                    continue
                try:
                    if not 200 <= response.status_code < 300:
                        raise FetchError(current, f"answered HTTP {response.status_code}")
                    body = self._read(exchange, current, response)
                finally:
                    exchange.close(response)
                break
            else:
                raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as e:
            raise FetchError(current, "not JSON") from e
        if not isinstance(document, dict):
            raise FetchError(current, f"not a JSON object but {type(document).__name__}")
        logger.debug("fetched: url=%s bytes=%d", current, len(body))
        return document

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The status code of one POST of `body` to `url` (no redirects followed; the answer's
        body read up to 64 KiB and dropped); FetchError when refused, unreachable or slow."""
        with _Exchange(allow_private=self.allow_private, timeout=self.timeout) as exchange:
            self.check_url(url)
            response = self._send(exchange, "POST", url, headers, body)
            try:
                read = 0
                while read < POST_ANSWER_BYTES and not exchange.expired:
                    chunk = response.raw.read(CHUNK_BYTES, decode_content=False)
                    if not chunk:
                        break
                    read += len(chunk)
            except (Urllib3HTTPError, OSError):
                pass  # the status is what was asked for; the connection is dropped below
            finally:
                exchange.close(response)  # the status came in time; a slow body does not matter
        logger.debug("posted: url=%s status=%d", url, response.status_code)
        return response.status_code

    def _send(self, exchange: _Exchange, method: str, url: str, headers: dict[str, str],
              body: bytes | None) -> requests.Response:
        """One request, answered up to its headers; its body is left to stream."""
        remaining = exchange.remaining()
        if remaining <= 0:
            raise FetchError(url, self._too_slow())
        try:
            response = self._session.request(method, url, headers=headers, data=body,
                                             stream=True, allow_redirects=False,
                                             timeout=(remaining, remaining))
        except _AddressRefusedError as e:
            raise FetchError(url, str(e)) from None
        except requests.RequestException as e:
            if exchange.expired or isinstance(e, requests.Timeout):
                raise FetchError(url, self._too_slow()) from e
            raise FetchError(url, "request failed") from e
        if exchange.expired:  # headers cut short by the deadline can still parse
            exchange.close(response)
            raise FetchError(url, self._too_slow())
        return response

    def _read(self, exchange: _Exchange, url: str, response: requests.Response) -> bytes:
        """The (decoded) body, refused past `max_bytes` or past the deadline."""
        too_large = f"larger than {_describe_bytes(self.max_bytes)}"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(url, too_large)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(url, too_large)
                chunks.append(chunk)
        except requests.RequestException as e:
            if exchange.expired:
                raise FetchError(url, self._too_slow()) from e
            raise FetchError(url, "the answer broke off") from e
        if exchange.expired:  # a shut-down stream can look like a short, complete body
            raise FetchError(url, self._too_slow())
        return b"".join(chunks)

    def _too_slow(self) -> str:
        return f"slower than {self.timeout:g} s"
