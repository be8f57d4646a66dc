"""A real local HTTP/1.1 server for transport tests: h11 parses each request, a script writes raw bytes back."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11


@dataclass
class Seen:
    """One request as h11 parsed it on the server."""

    method: bytes
    target: bytes
    headers: dict[bytes, bytes]
    body: bytes
    connection: int


@dataclass
class Reply:
    data: bytes = b""
    close: bool = False
    delay: float = 0.0
    reset: bool = False
    #: close this long after answering (0: keep the connection)
    close_after: float = 0.0


def ok(body: bytes = b"ok", extra: bytes = b"") -> Reply:
    return Reply(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body))


Script = Callable[[Seen], Reply | Awaitable[Reply]]


class Wire:
    """A TCP (or TLS) server on a free port: h11 reads each request, the script writes the answer."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.seen: list[Seen] = []
        self.connections = 0
        self.open = 0
        self.peak_open = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Wire:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        try:
            while True:
                seen = await self._read_request(reader, number)
                if seen is None:
                    return
                self.seen.append(seen)
                reply = self.script(seen)
                if not isinstance(reply, Reply):
                    reply = await reply
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                if reply.reset:  # RST instead of FIN
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                writer.write(reply.data)
                await writer.drain()
                if reply.close:
                    return
                if reply.close_after:
                    await asyncio.sleep(reply.close_after)
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.open -= 1
            writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader, number: int) -> Seen | None:
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                headers = {name.lower(): value for name, value in request.headers}
                return Seen(request.method, request.target, headers, body, number)
