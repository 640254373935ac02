"""Real local HTTP servers for tests: every external API of the suite is one of these.

A threaded HTTP/1.1 keep-alive server on 127.0.0.1 (or ``::1``) on a free port. Use it as the
``http_server`` fixture (registered through ``pytest_plugins`` in tests/conftest.py), as
``make_http_server(...)`` for more than one server, or directly as a context manager::

    with HttpServer() as server:
        send("GET", server.url("/echo?x=1"))
        assert server.count("/echo") == 1

Built-in routes (query parameters in brackets):

- ``/echo`` — JSON ``{"method", "path", "query" (first values), "query_list", "headers", "body"
  (text), "body_base64", "client_port"}``.
- ``/status/<code>`` — that status, a small text body.
- ``/slow`` [``ms``] — sleeps ``ms`` before answering ``{"slept_ms": ms}``.
- ``/drip`` [``ms``, ``chunks``] — answers at once, then sends ``chunks`` chunked pieces ``ms`` apart.
- ``/retry-after`` [``seconds``, ``times``, ``status`` (429), ``key``] — answers ``status`` with
  ``Retry-After: seconds`` the first ``times`` requests (counted per ``key``, default the query
  string), then 200 ``{"ok": true, "attempt": n}``.
- ``/huge`` [``bytes``, ``mode``] — ``bytes`` bytes of ``x``; ``mode`` ``length`` (Content-Length,
  default), ``chunked`` (no Content-Length) or ``close`` (no length, ends by closing), or ``lie``
  (a Content-Length of 10 but ``bytes`` bytes sent with ``Connection: close``).
- ``/redirect`` [``to``, ``code`` (302)] — a redirect to ``to``.
- ``/json`` — ``server.json_body`` with ``server.json_status`` (set them, or call ``set_json``).

Custom routes: ``server.route("POST", "/token", handler)``; the handler receives a
``RecordedRequest`` and returns ``(status, headers, body)`` where body is bytes, str, a dict/list
(sent as JSON), or an iterator of bytes (sent chunked). A custom route wins over a built-in one;
``path`` is matched exactly, or as a prefix when it ends with ``*``.

Every request is recorded before it is answered: ``server.requests`` (a copy), ``server.count(path)``,
``server.last``, ``server.client_ports()`` (one port per TCP connection: keep-alive checks),
``server.clear()``. All of it is thread-safe.

Other helpers: ``free_port()`` (a loopback port nothing listens on: refused connections, or one for a
server started outside the test), ``blackhole_port()`` (a loopback port where connecting hangs: connect timeouts),
``self_signed_certificate()``, and the ``fresh_http_pools`` fixture (closes integrations.http's
pooled sessions and resolution cache before and after a test).

HTTPS: ``HttpServer(tls=True)`` serves a self-signed certificate for ``localhost``/``127.0.0.1``
made with ``cryptography`` (``server.cert_path`` is its PEM, to trust it explicitly).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

Body = bytes | str | dict | list | Iterable[bytes] | None
Handler = Callable[["RecordedRequest"], tuple[int, dict[str, str], Body]]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    query_list: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int
    raw_path: str
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header, case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args):  # tests stay quiet
        pass

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query_list = parse_qs(parts.query, keep_blank_values=True)
        recorded = RecordedRequest(
            method=self.command,
            path=parts.path,
            query={k: v[0] for k, v in query_list.items()},
            query_list=query_list,
            headers=dict(self.headers.items()),
            body=self._read_body(),
            client_port=self.client_address[1],
            raw_path=self.path,
        )
        owner = self.server.owner
        owner._record(recorded)
        status, headers, body = owner._dispatch(recorded)
        self._respond(status, headers, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            pieces = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _respond(self, status: int, headers: dict[str, str], body: Body) -> None:
        headers = dict(headers)
        names = {k.lower() for k in headers}
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            if "content-type" not in names:
                headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
            if "content-type" not in names:
                headers["Content-Type"] = "text/plain; charset=utf-8"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        closing = headers.get("Connection", "").lower() == "close"
        if body is None or isinstance(body, bytes):
            data = body or b""
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        elif closing:
            self.end_headers()
            for piece in body if self.command != "HEAD" else ():
                self.wfile.write(piece)
                self.wfile.flush()
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for piece in body:
                    if piece:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
        if closing:
            self.close_connection = True
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    owner: HttpServer

    def handle_error(self, request, client_address):
        pass  # clients that hang up (timeouts, size limits) are part of the tests

    def process_request(self, request, client_address):
        self.owner._track(request, open_=True)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.owner._track(request, open_=False)
        super().shutdown_request(request)


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpServer:
    """A real HTTP server on loopback; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", *, tls: bool = False):
        self.host = host
        self.tls = tls
        self.cert_path: str | None = None
        self.json_body: Any = {"ok": True}
        self.json_status = 200
        self._routes: dict[tuple[str, str], Handler] = {}
        self._requests: list[RecordedRequest] = []
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> HttpServer:
        server_class = _Server6 if ":" in self.host else _Server
        self._server = server_class((self.host, 0), _Handler)
        self._server.owner = self
        if self.tls:
            self._server.socket = self._tls_context().wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._server = None

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # addresses
    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    # routes
    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method path` with `handler(request) -> (status, headers, body)`."""
        self._routes[(method.upper(), path)] = handler

    def set_json(self, body: Any, status: int = 200) -> None:
        self.json_body, self.json_status = body, status

    # records
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._requests if path is None or r.path == path)

    def client_ports(self) -> list[int]:
        """The client port of each request in order; one distinct port per TCP connection."""
        with self._lock:
            return [r.client_port for r in self._requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._counters.clear()

    # internals
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _track(self, sock: socket.socket, *, open_: bool) -> None:
        """Remember open client sockets so stop() can wake handlers blocked on keep-alive reads."""
        with self._lock:
            if open_:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _bump(self, key: str) -> int:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1
            return self._counters[key]

    def _dispatch(self, request: RecordedRequest) -> tuple[int, dict[str, str], Body]:
        handler = self._routes.get((request.method, request.path)) or self._routes.get(("*", request.path))
        if handler is None:
            for (method, path), candidate in self._routes.items():
                if path.endswith("*") and request.path.startswith(path[:-1]) and method in ("*", request.method):
                    handler = candidate
                    break
        if handler is not None:
            return handler(request)
        builtin = _BUILTINS.get(request.path)
        if builtin is not None:
            return builtin(self, request)
        if request.path.startswith("/status/"):
            code = int(request.path.rsplit("/", 1)[1])
            return code, {}, f"status {code}"
        return 404, {}, {"error": "no such route", "path": request.path}

    def _tls_context(self) -> ssl.SSLContext:
        cert_pem, key_pem = self_signed_certificate()
        folder = Path(tempfile.mkdtemp(prefix="swb-tls-"))
        cert_file, key_file = folder / "cert.pem", folder / "key.pem"
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        self.cert_path = str(cert_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context


def self_signed_certificate(names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[bytes, bytes]:
    """A fresh self-signed certificate and key (PEM) for `names` (DNS names or IP addresses)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def free_port() -> int:
    """A loopback port nothing listens on now: the OS's pick, released (connecting to it is refused,
    and a server started by the test can bind it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def blackhole_port() -> Iterator[int]:
    """A loopback port whose listen queue is full: connecting to it hangs until the client times out.

    For connect-timeout tests without sending a packet anywhere but 127.0.0.1.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: a request sent there waits for its
    reply until the client's read timeout (a stuck Redis or database server, say)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stopping = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, read by nobody

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stopping.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


# --- built-in routes -----------------------------------------------------------------------------


def _echo(server: HttpServer, request: RecordedRequest):
    return (
        200,
        {},
        {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "query_list": request.query_list,
            "headers": request.headers,
            "body": request.text,
            "body_base64": base64.b64encode(request.body).decode(),
            "client_port": request.client_port,
        },
    )


def _slow(server: HttpServer, request: RecordedRequest):
    ms = int(request.query.get("ms", "1000"))
    time.sleep(ms / 1000)
    return 200, {}, {"slept_ms": ms}


def _drip(server: HttpServer, request: RecordedRequest):
    ms = int(request.query.get("ms", "200"))
    chunks = int(request.query.get("chunks", "10"))

    def pieces() -> Iterator[bytes]:
        for _ in range(chunks):
            time.sleep(ms / 1000)
            yield b"x"

    return 200, {"Content-Type": "text/plain"}, pieces()


def _retry_after(server: HttpServer, request: RecordedRequest):
    times = int(request.query.get("times", "1"))
    attempt = server._bump("retry-after:" + request.query.get("key", urlsplit(request.raw_path).query))
    if attempt <= times:
        status = int(request.query.get("status", "429"))
        return status, {"Retry-After": request.query.get("seconds", "1")}, {"error": "try again", "attempt": attempt}
    return 200, {}, {"ok": True, "attempt": attempt}


def _huge(server: HttpServer, request: RecordedRequest):
    size = int(request.query.get("bytes", str(10 * 1024 * 1024)))
    mode = request.query.get("mode", "length")
    piece = b"x" * 65536

    def pieces(total: int) -> Iterator[bytes]:
        while total > 0:
            yield piece[: min(total, len(piece))]
            total -= len(piece)

    if mode == "length":
        return 200, {"Content-Type": "application/octet-stream"}, b"x" * size
    if mode == "chunked":
        return 200, {"Content-Type": "application/octet-stream"}, pieces(size)
    if mode == "lie":
        return 200, {"Content-Length": "10", "Connection": "close"}, pieces(size)
    return 200, {"Connection": "close"}, pieces(size)


def _redirect(server: HttpServer, request: RecordedRequest):
    code = int(request.query.get("code", "302"))
    return code, {"Location": request.query.get("to", "/echo")}, ""


def _json(server: HttpServer, request: RecordedRequest):
    return server.json_status, {"Content-Type": "application/json"}, json.dumps(server.json_body).encode()


_BUILTINS: dict[str, Callable[[HttpServer, RecordedRequest], tuple[int, dict[str, str], Body]]] = {
    "/echo": _echo,
    "/slow": _slow,
    "/drip": _drip,
    "/retry-after": _retry_after,
    "/huge": _huge,
    "/redirect": _redirect,
    "/json": _json,
}


# --- pytest fixtures -----------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A fresh HTTP server on 127.0.0.1 for one test."""
    with HttpServer() as server:
        yield server


@pytest.fixture
def fresh_http_pools() -> Iterator[None]:
    """Start and end a test with no pooled sessions or cached resolutions in integrations.http."""
    from integrations import http

    http.close_pools()
    yield
    http.close_pools()


@pytest.fixture
def make_http_server() -> Iterator[Callable[..., HttpServer]]:
    """`make_http_server(host="127.0.0.1", tls=False)` → another started server, stopped after the test."""
    servers: list[HttpServer] = []

    def make(host: str = "127.0.0.1", *, tls: bool = False) -> HttpServer:
        server = HttpServer(host, tls=tls).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
