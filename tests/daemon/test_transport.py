"""The daemon's HTTP/1.1 transport against a real local server that parses every request with h11.

The server is scripted per test with the exact bytes it answers, so the framing a carrier or a
channel might send (lengths, chunks, trailers, gzip, a close, garbage, a stall, a reset) is what
the client really reads off a socket.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.daemon.transport import KeepAliveTransport, daemon_client
from tests.daemon.wire import Reply, Seen, Wire, ok
from tests.helpers import self_signed


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


POOL_ARGS = ("max_connections", "max_keepalive_connections", "ssl_context")


def client(timeout: float | httpx.Timeout = 5.0, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client on the transport; pool arguments go to the transport, the rest to httpx."""
    pool = {k: kwargs.pop(k) for k in POOL_ARGS if k in kwargs}
    return httpx.AsyncClient(transport=KeepAliveTransport(**pool), timeout=timeout, **kwargs)


def test_one_kept_alive_connection_carries_every_request_and_the_server_parses_each() -> None:
    async def main() -> None:
        async with Wire(lambda seen: ok(b"answer:" + seen.body)) as wire, client() as http:
            for i in range(20):
                response = await http.post(f"{wire.url}/poll/query.do?x={i}", data={"n": str(i), "sign": "AB"})
                assert response.status_code == 200
                assert response.text == f"answer:n={i}&sign=AB"
                assert response.http_version == "HTTP/1.1"
                assert response.reason_phrase == "OK"
            assert wire.connections == 1  # httpx's default transport would too; a churning pool would not
            assert http._transport.connects == 1  # type: ignore[attr-defined]
            first = wire.seen[0]
            assert first.method == b"POST"
            assert first.target == b"/poll/query.do?x=0"
            assert first.headers[b"host"] == f"127.0.0.1:{wire.port}".encode()
            assert first.headers[b"content-type"] == b"application/x-www-form-urlencoded"
            assert first.headers[b"content-length"] == b"11"

    run(main())


def test_chunked_answers_with_trailers_gzip_and_repeated_headers_are_read_whole() -> None:
    packed = gzip.compress("已签收 — delivered".encode())
    half = len(packed) // 2
    chunks = b"%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n" % (half, packed[:half], len(packed) - half,
                                                                        packed[half:])  # fmt: skip
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n"
              b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n" + chunks)  # fmt: skip

    async def main() -> None:
        async with Wire(lambda seen: Reply(answer)) as wire, client() as http:
            for _ in range(3):
                response = await http.get(wire.url + "/")
                assert response.text == "已签收 — delivered"
                assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
            assert wire.connections == 1  # the trailer was consumed: the connection stayed usable

    run(main())


def test_an_answer_ended_by_closing_and_an_http10_answer_are_read_and_not_reused() -> None:
    replies = iter([
        Reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", close=True),
        Reply(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nten", close=True),
        ok(b"third"),
    ])  # fmt: skip

    async def main() -> None:
        async with Wire(lambda seen: next(replies)) as wire, client() as http:
            assert (await http.get(wire.url)).text == "until the end"
            assert (await http.get(wire.url)).text == "ten"
            assert (await http.get(wire.url)).text == "third"
            assert wire.connections == 3

    run(main())


def test_no_body_is_read_for_head_204_and_304_and_100_continue_is_skipped() -> None:
    def script(seen: Seen) -> Reply:
        if seen.method == b"HEAD":
            return Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n")
        if seen.target == b"/204":
            return Reply(b"HTTP/1.1 204 No Content\r\n\r\n")
        return Reply(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nhi")

    async def main() -> None:
        async with Wire(script) as wire, client() as http:
            head = await http.head(wire.url)
            assert head.status_code == 200 and head.content == b""
            assert (await http.get(wire.url + "/204")).status_code == 204
            created = await http.post(wire.url + "/c", content=b"x")
            assert (created.status_code, created.text) == (201, "hi")
            assert wire.connections == 1

    run(main())


def test_a_connection_the_server_closed_while_idle_is_never_reused() -> None:
    # the server answers as if it kept the connection, then closes it (its keep-alive timeout)
    async def main() -> None:
        async with Wire(lambda seen: Reply(ok().data, close_after=0.02)) as wire, client() as http:
            for _ in range(5):
                assert (await http.get(wire.url)).text == "ok"
                await asyncio.sleep(0.05)  # the FIN arrives while the connection sits in the pool
            assert wire.connections == 5
            assert http._transport.connects == 5  # type: ignore[attr-defined]

    run(main())


def test_idle_connections_expire_after_the_keepalive_expiry() -> None:
    async def main() -> None:
        async with Wire(lambda seen: ok()) as wire:
            transport = KeepAliveTransport(max_connections=4, max_keepalive_connections=4, keepalive_expiry=0.05)
            async with httpx.AsyncClient(transport=transport) as http:
                await http.get(wire.url)
                await http.get(wire.url)
                await asyncio.sleep(0.1)
                await http.get(wire.url)
            assert wire.connections == 2

    run(main())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Reply(b"<html><body>502 Bad Gateway</body></html>\r\n\r\n"), "not an HTTP/1.1 answer"),
        (Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ntoo short", close=True), "complete message body"),
        (Reply(b"HTTP/1.1 200 OK\r\nContent-Length: nine\r\n\r\n"), "invalid Content-Length"),
        (Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"), "invalid Content-Length"),
        (Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), "malformed chunk size"),
        (Reply(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), "malformed header line"),
        (Reply(b"", close=True), "without sending a response"),
        (Reply(b"HTTP/1.1 200 OK\r\nContent-Le", close=True), "in the middle of a response"),
        (Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", close=True), "complete message"),
    ],
    ids=[
        "html",
        "truncated",
        "bad-length",
        "two-lengths",
        "bad-chunk",
        "bad-header",
        "silent-close",
        "cut-head",
        "cut-chunk",
    ],
)
def test_an_unreadable_answer_is_an_httpx_protocol_error_and_the_next_request_works(
    answer: Reply, message: str
) -> None:
    replies = iter([answer, ok(b"fine")])

    async def main() -> None:
        async with Wire(lambda seen: next(replies)) as wire, client() as http:
            with pytest.raises(httpx.RemoteProtocolError, match=message):
                await http.get(wire.url)
            assert http._transport.open_connections == 0  # type: ignore[attr-defined]
            assert (await http.get(wire.url)).text == "fine"
            assert wire.connections == 2  # the broken connection was dropped, not put back

    run(main())


def test_a_stalled_answer_times_out_as_httpx_read_timeout() -> None:
    replies = iter([Reply(ok().data, delay=1.0), ok(b"after")])

    async def main() -> None:
        async with Wire(lambda seen: next(replies)) as wire, client(timeout=httpx.Timeout(5.0, read=0.2)) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(wire.url)
            assert http._transport.open_connections == 0  # type: ignore[attr-defined]
            # the late answer of the first request must not be read as the answer of the second
            assert (await http.get(wire.url)).text == "after"
            assert wire.connections == 2

    run(main())


def test_a_cancelled_request_leaves_no_stale_answer_behind() -> None:
    async def script(seen: Seen) -> Reply:
        await asyncio.sleep(0.3 if seen.target == b"/slow" else 0)
        return ok(seen.target)

    async def main() -> None:
        async with Wire(script) as wire, client() as http:
            task = asyncio.ensure_future(http.get(wire.url + "/slow"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert http._transport.open_connections == 0  # type: ignore[attr-defined]
            assert (await http.get(wire.url + "/next")).text == "/next"
            await asyncio.sleep(0.4)
            assert (await http.get(wire.url + "/last")).text == "/last"

    run(main())


def test_a_reset_is_a_read_error_and_a_refused_connection_a_connect_error() -> None:
    replies = iter([Reply(reset=True), ok(b"again")])

    async def main() -> None:
        async with Wire(lambda seen: next(replies)) as wire, client() as http:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as caught:
                await http.get(wire.url)
            assert isinstance(caught.value, httpx.TransportError)  # what every adapter and channel catches
            assert (await http.get(wire.url)).text == "again"
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        async with client() as http:
            with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
                await http.get(f"http://127.0.0.1:{port}/")

    run(main())


def test_the_pool_holds_at_most_max_connections_and_a_full_pool_times_out() -> None:
    async def script(seen: Seen) -> Reply:
        await asyncio.sleep(0.1)
        return ok()

    async def main() -> None:
        async with Wire(script) as wire:
            async with client(max_connections=3, max_keepalive_connections=3) as http:
                answers = await asyncio.gather(*(http.get(wire.url) for _ in range(12)))
                assert [a.status_code for a in answers] == [200] * 12
            assert wire.peak_open == 3
            assert wire.connections == 3  # each came back to the pool and was reused
            async with client(max_connections=1, timeout=httpx.Timeout(5.0, pool=0.05)) as http:
                first = asyncio.ensure_future(http.get(wire.url))
                await asyncio.sleep(0.02)
                with pytest.raises(httpx.PoolTimeout):
                    await http.get(wire.url)
                assert (await first).status_code == 200

    run(main())


def test_a_body_of_unknown_length_is_sent_chunked() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    async def main() -> None:
        async with Wire(lambda seen: ok(seen.body)) as wire, client() as http:
            response = await http.post(wire.url, content=parts())
            assert response.text == "first,second"
            assert wire.seen[0].headers[b"transfer-encoding"] == b"chunked"

    run(main())


def test_tls_is_verified_against_the_roots_given_and_refused_otherwise(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        async with Wire(lambda seen: ok(b"secret"), tls=server_tls) as wire:
            async with client(ssl_context=trusting) as http:
                assert wire.url.startswith("https://")
                assert (await http.get(wire.url)).text == "secret"
                assert (await http.get(wire.url)).text == "secret"
                assert wire.connections == 1
            async with client() as http:  # certifi's roots do not know this certificate
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await http.get(wire.url)

    run(main())


def test_the_daemon_client_is_built_on_this_transport_and_closes_its_connections() -> None:
    async def main() -> None:
        async with Wire(lambda seen: ok()) as wire:
            http = daemon_client(max_connections=4, max_keepalive_connections=2, timeout=httpx.Timeout(3.0))
            async with http:
                assert isinstance(http._transport, KeepAliveTransport)
                await asyncio.gather(*(http.get(wire.url) for _ in range(4)))
            await asyncio.sleep(0.05)
            assert wire.open == 0  # closing the client closed the kept-alive connections

    run(main())


def test_an_unsupported_scheme_is_refused_as_httpx_does() -> None:
    async def main() -> None:
        async with client() as http:
            with pytest.raises(httpx.UnsupportedProtocol):
                await http.get("ftp://127.0.0.1/")

    run(main())


def test_a_proxy_from_the_environment_still_carries_the_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def main() -> None:
        async with Wire(lambda seen: ok(b"via proxy")) as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            async with daemon_client(max_connections=2, max_keepalive_connections=2) as http:
                response = await http.get("http://carrier.invalid/poll?n=1")
            assert response.text == "via proxy"
            assert proxy.seen[0].target == b"http://carrier.invalid/poll?n=1"  # the absolute form a proxy is sent
            monkeypatch.delenv("http_proxy")
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)  # any proxy variable: httpx's transport, which reads them all
            async with daemon_client(max_connections=2, max_keepalive_connections=2) as http:
                assert not isinstance(http._transport, KeepAliveTransport)

    run(main())
