"""Fuzz the daemon's HTTP transport with answers off a real socket: a Response or an httpx error, nothing else.

Every example is written by a local server (``tests/daemon/wire.py``) and then the
connection is closed; the client must hand back an ``httpx.Response`` or raise one of the
errors the adapters and channels catch (``httpx.TransportError``; ``httpx.DecodingError``
for a body its Content-Encoding does not decode), and the next request on the same client
must get its own answer — a broken answer never poisons the pool.
"""

from __future__ import annotations

import asyncio
import gzip

import httpx
from hypothesis import event, given
from hypothesis import strategies as st

from monitor.daemon.transport import KeepAliveTransport
from tests.daemon.wire import Reply, Seen, Wire, ok
from tests.fuzz.harness import FUZZ

STATUS_LINES = [b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content", b"HTTP/1.0 200 OK", b"HTTP/1.1 100 Continue",
                b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 502 Bad Gateway", b"HTTP/2 200", b"HTTP/1.1 2000 OK",
                b"<html>", b""]  # fmt: skip
HEADERS = st.sampled_from([
    b"Content-Length: 0", b"Content-Length: 5", b"Content-Length: 400", b"Content-Length: -1",
    b"Content-Length: +5", b"Content-Length: five", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip",
    b"Content-Encoding: gzip", b"Content-Encoding: deflate", b"Content-Encoding: zz", b"Connection: close",
    b"Connection: keep-alive", b"Content-Type: application/json", b"X-Odd:  spaced  ", b"no colon", b" Lead: x",
])  # fmt: skip


@st.composite
def chunked(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.binary(max_size=40), max_size=4))
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    ending = draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nTrailer: t\r\n\r\n", b"0\r\n", b"", b"-5\r\n", b"zz\r\n"]))
    return body + ending


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))  # anything at all
    status = draw(st.sampled_from(STATUS_LINES))
    headers = draw(st.lists(HEADERS, max_size=5))
    body = draw(st.one_of(st.binary(max_size=80), chunked(), st.just(gzip.compress(b'{"ok": true}'))))
    cut = draw(st.integers(0, 12))  # sometimes the connection closes a few bytes early
    data = b"\r\n".join([status, *headers]) + b"\r\n\r\n" + body
    return data[: len(data) - cut] if cut < 4 else data


@FUZZ
@given(answers())
def test_any_answer_is_a_response_or_an_httpx_error_and_the_next_request_gets_its_own(answer: bytes) -> None:
    async def main() -> None:
        count = 0

        def script(seen: Seen) -> Reply:
            nonlocal count
            count += 1
            return Reply(answer, close=True) if count == 1 else ok(b"next:" + seen.target)

        transport = KeepAliveTransport(max_connections=4, max_keepalive_connections=4)
        async with Wire(script) as wire, httpx.AsyncClient(transport=transport, timeout=2.0) as http:
            try:
                response = await http.get(wire.url + "/fuzzed")
                event(f"answered {response.status_code // 100}xx")
            except (httpx.TransportError, httpx.DecodingError) as err:
                event(type(err).__name__)
            follow = await http.get(wire.url + "/after")
            assert follow.text == "next:/after"

    asyncio.run(main())
