"""HTTP/1.1 keep-alive transport for the daemon's ``httpx.AsyncClient``.

Why not httpx's own: a carrier like Kuaidi100 answers one number per request, so the
poller's throughput is the HTTP client's CPU. httpx's default transport (httpcore over
anyio) spends ~2 ms of CPU per request on this machine, most of it outside the bytes: on
every checkout and every response it walks the whole pool and asks each idle connection
whether its socket is readable (a ``getpeername`` and a ``poll`` each), and anyio opens a
cancel scope (``asyncio.current_task``, pure Python before 3.12) around every lock and
read. The carriers and channels speak small HTTP/1.1 requests and answers; this transport
does just that on ``asyncio`` protocols — a LIFO of idle connections per origin, whose
closing the event loop mostly notices first (so checking one is a flag and one ``poll`` of
that one socket, not a walk of the pool),
answers read whole into memory (bounded), httpx's timeouts per phase — and keeps httpx's
API and its exceptions for everything above the wire. HTTP/2 and ``Expect: 100-continue``
are not needed here and not spoken; a deployment behind a proxy gets httpx's own
transport (``daemon_client``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import select
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

#: An answer's head longer than this is refused (no carrier or channel sends one near it).
MAX_HEAD = 64 * 1024
#: An answer's body larger than this is refused: every answer here is read whole into memory.
MAX_BODY = 32 * 1024 * 1024
#: Seconds an idle connection is kept for reuse (httpcore's default too).
KEEPALIVE_EXPIRY = 5.0

_Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: bytes received so far, and whether the peer is gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: _Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self.idle_until = 0.0
        self.fileno = -1
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        self.fileno = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the transport -------------------------------------------------------------

    def reusable(self, now: float) -> bool:
        """Whether an idle connection can carry another request: open, quiet, not expired.

        The event loop has usually seen a server's close already (``closed``); one ``poll`` of
        this socket catches the close that reached the kernel but not yet the loop (a server
        that closes right after answering). Anything readable on an idle connection — a close
        or bytes nobody asked for — means it cannot carry a request.
        """
        if self.closed or self.buffer or now >= self.idle_until:
            return False
        if self.transport is None or self.transport.is_closing():
            return False
        if self.fileno >= 0:
            poller = select.poll()
            poller.register(self.fileno, select.POLLIN)
            if poller.poll(0):
                return False
        return True

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def more(self, timeout: float | None) -> None:
        """Wait until more bytes arrive (or the peer closes); ``TimeoutError`` after ``timeout`` s."""
        if self.closed:
            return
        waiter = self._waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


@dataclass(frozen=True, slots=True)
class _Answer:
    """What was read off the wire for one request."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """Plain and TLS HTTP/1.1 with a bounded pool of kept-alive connections per origin."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_keepalive = max_keepalive_connections
        self.keepalive_expiry = keepalive_expiry
        self._ssl = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._open: set[_Connection] = set()
        #: Connections opened so far (the pool's churn; tests and benchmarks read it).
        self.connects = 0

    @property
    def open_connections(self) -> int:
        """Connections open now, idle or carrying a request."""
        return len(self._open)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import certifi  # httpx's own dependency: the same roots httpx verifies against

            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.", request=request)
        port = url.port or (443 if scheme == "https" else 80)
        origin: _Origin = (scheme, url.host, port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head = _request_head(request)
        body = await request.aread()
        if body and b"chunked" in request.headers.get("transfer-encoding", "").encode():
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)  # a body of unknown length, sent as one chunk
        if self._slots.locked():  # wait_for costs a task: only when the pool is full
            try:
                await asyncio.wait_for(self._slots.acquire(), timeouts.get("pool"))
            except TimeoutError as err:
                raise httpx.PoolTimeout("Timed out waiting for a connection from the pool.", request=request) from err
        else:
            await self._slots.acquire()
        try:
            conn = self._checkout(origin)
            if conn is None:
                conn = await self._connect(origin, timeouts.get("connect"), request)
            try:
                conn.send(head + body if body else head)
                answer = await _read_answer(conn, request.method == "HEAD", timeouts.get("read"), request)
            except BaseException:
                self._drop(conn)
                raise
            self._checkin(conn, answer.keep_alive)
        finally:
            self._slots.release()
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(answer.body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
        )

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        self._idle_count = 0

    # -- the pool ----------------------------------------------------------------------------

    def _checkout(self, origin: _Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        if not stack:
            return None
        now = asyncio.get_running_loop().time()
        while stack:
            conn = stack.pop()  # the most recently used: the least likely to have been closed by the server
            self._idle_count -= 1
            if conn.reusable(now):
                return conn
            self._drop(conn)
        return None

    def _checkin(self, conn: _Connection, keep_alive: bool) -> None:
        if not keep_alive or conn.closed or self._idle_count >= self.max_keepalive:
            self._drop(conn)
            return
        conn.idle_until = conn.loop.time() + self.keepalive_expiry
        self._idle.setdefault(conn.origin, []).append(conn)
        self._idle_count += 1

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def _connect(self, origin: _Origin, timeout: float | None, request: httpx.Request) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._ssl_context() if scheme == "https" else None
        factory = functools.partial(_Connection, loop, origin)
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(factory, host, port, ssl=tls, server_hostname=host if tls else None), timeout
            )
        except TimeoutError as err:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from err
        except OSError as err:  # refused, unreachable, a certificate that does not verify (ssl.SSLError)
            raise httpx.ConnectError(f"{host}:{port}: {err}", request=request) from err
        self.connects += 1
        self._open.add(conn)
        return conn


def _request_head(request: httpx.Request) -> bytes:
    """The request line and headers; httpx has already set Host and the body's length."""
    target = request.url.raw_path or b"/"
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def _read_answer(conn: _Connection, head_only: bool, timeout: float | None, request: httpx.Request) -> _Answer:
    """Read one answer: skip informational ones, then the head, then the body as framed."""
    while True:
        status, reason, version, headers = await _read_head(conn, timeout, request)
        if not 100 <= status < 200:
            break
    fields = _fields(headers)
    connection = fields.get(b"connection", b"").lower()
    keep = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
    if head_only or status in (204, 304):
        return _Answer(status, reason, headers, b"", keep)
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        body = await _read_chunked(conn, timeout, request)
    elif b"content-length" in fields:
        text = fields[b"content-length"]
        if not text.isdigit():  # int() would also take "+5", " 5" and "1_0"
            raise httpx.RemoteProtocolError("invalid Content-Length in the answer", request=request)
        length = int(text)
        if length > MAX_BODY:
            raise httpx.RemoteProtocolError(f"answer of {length} bytes refused", request=request)
        body = await _read_exactly(conn, length, timeout, request)
    else:  # delimited by the end of the connection
        while not conn.closed:
            await _more(conn, timeout, request)
            _check_size(conn, request)
        _check_reset(conn, request)
        body = bytes(conn.buffer)
        conn.buffer.clear()
        keep = False
    return _Answer(status, reason, headers, body, keep)


async def _read_until(
    conn: _Connection, marker: bytes, timeout: float | None, request: httpx.Request, what: str, lost: str
) -> bytes:
    """Take the bytes before ``marker`` off the buffer (and the marker), waiting for more as needed.

    ``lost`` names what was cut short when the peer closes first; ``{part}`` in it becomes
    "without sending" when nothing at all had come, else "in the middle of".
    """
    buffer = conn.buffer
    end = buffer.find(marker)
    while end < 0:
        if len(buffer) > MAX_HEAD:
            raise httpx.RemoteProtocolError(f"{what} is too long", request=request)
        if conn.closed:
            _check_reset(conn, request)
            part = "without sending" if not buffer else "in the middle of"
            raise httpx.RemoteProtocolError(lost.format(part=part), request=request)
        await _more(conn, timeout, request)
        end = buffer.find(marker)
    found = bytes(buffer[:end])
    del buffer[: end + len(marker)]
    return found


async def _read_head(
    conn: _Connection, timeout: float | None, request: httpx.Request
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    lost = "Server disconnected {part} a response."
    head = await _read_until(conn, b"\r\n\r\n", timeout, request, "the answer's head", lost)
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header line in the answer: {line[:80]!r}", request=request)
        headers.append((name, value.strip()))
    return int(code), reason, version, headers


_HEX = b"0123456789abcdefABCDEF"
_FRAMING = (b"connection", b"transfer-encoding", b"content-length")


def _fields(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The framing headers by lower-case name; repeats are joined, so two different lengths do not parse."""
    out: dict[bytes, bytes] = {}
    for name, value in headers:
        key = name.lower()
        if key in _FRAMING:
            if key not in out or (key == b"content-length" and out[key] == value):
                out[key] = value
            else:
                out[key] = out[key] + b", " + value
    return out


async def _read_exactly(conn: _Connection, length: int, timeout: float | None, request: httpx.Request) -> bytes:
    buffer = conn.buffer
    while len(buffer) < length:
        if conn.closed:
            _check_reset(conn, request)
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            )
        await _more(conn, timeout, request)
    data = bytes(buffer[:length])
    del buffer[:length]
    return data


async def _read_line(conn: _Connection, timeout: float | None, request: httpx.Request) -> bytes:
    lost = "peer closed connection {part} a chunk's size line"
    return await _read_until(conn, b"\r\n", timeout, request, "a chunk header", lost)


async def _read_chunked(conn: _Connection, timeout: float | None, request: httpx.Request) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await _read_line(conn, timeout, request)
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or size_text.strip(_HEX):  # int() would also take "-5", "+5" and "1_0"
            raise httpx.RemoteProtocolError(f"malformed chunk size {size_text[:20]!r}", request=request)
        size = int(size_text, 16)
        if size == 0:
            while await _read_line(conn, timeout, request):  # trailer fields, up to the empty line
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise httpx.RemoteProtocolError(f"answer of more than {MAX_BODY} bytes refused", request=request)
        parts.append(await _read_exactly(conn, size, timeout, request))
        if await _read_line(conn, timeout, request):
            raise httpx.RemoteProtocolError("a chunk does not end with CRLF", request=request)


async def _more(conn: _Connection, timeout: float | None, request: httpx.Request) -> None:
    try:
        await conn.more(timeout)
    except TimeoutError as err:
        raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from err


def _check_size(conn: _Connection, request: httpx.Request) -> None:
    if len(conn.buffer) > MAX_BODY:
        raise httpx.RemoteProtocolError(f"answer of more than {MAX_BODY} bytes refused", request=request)


def _check_reset(conn: _Connection, request: httpx.Request) -> None:
    """A connection closed by an error (a reset) is a read error, not a short answer."""
    if conn.error is not None:
        raise httpx.ReadError(f"{type(conn.error).__name__}: {conn.error}", request=request) from conn.error


#: The variables httpx reads for proxies (either case); where one is set, httpx's own transport is used.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def daemon_client(*, max_connections: int, max_keepalive_connections: int, **kwargs: Any) -> httpx.AsyncClient:
    """The client the daemon shares between carriers, channels and sinks.

    On this transport, unless the process environment names a proxy: httpx reads the proxy
    variables from ``os.environ`` and honours them only with its own transport, so a proxied
    deployment keeps exactly httpx's behaviour (``NO_PROXY`` included) at httpx's cost.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive_connections)
    if any(os.environ.get(name) or os.environ.get(name.lower()) for name in PROXY_VARIABLES):
        return httpx.AsyncClient(limits=limits, **kwargs)
    transport = KeepAliveTransport(max_connections=max_connections, max_keepalive_connections=max_keepalive_connections)
    return httpx.AsyncClient(transport=transport, **kwargs)
