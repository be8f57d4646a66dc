"""docs/api.md's recipes work as written, and /docs works with no internet."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.api.server import DOCS, SECRET, SNIPPET, ApiServer, stored
from tests.carriers.payloads import kuaidi100_recorded as fixture


def shell_block(after: str) -> str:
    """Return the first ```sh block of docs/api.md that follows the text ``after``."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```sh\n", text.index(after)) + len("```sh\n")
    return text[start : text.index("```", start)]


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")), reason="needs openssl and curl")
def test_the_shell_refund_recipe_is_accepted(api: ApiServer) -> None:
    with api.client() as http:
        shipment = {"order_id": "TB20261111000088", "carrier": "sandbox", "tracking_no": "SB1"}
        http.post("/api/v1/shipments", json=shipment | {"shipped_at": "2026-11-11T09:00:00+08:00"})
    recipe = shell_block("The same from a shell")
    # the server runs on a simulated clock: stamp the request with its time, not the machine's
    recipe = recipe.replace("TS=$(date +%s)", f"TS={int(api.clock.now().timestamp())}")
    env = os.environ | {"PM": api.url, "PARCEL_MONITOR_REFUND_SECRET": SECRET}
    done = subprocess.run(["bash", "-c", recipe], env=env, capture_output=True, text=True, timeout=30, check=True)
    assert '"decision":"held"' in done.stdout
    assert stored(api.store)["refund"] == 1


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_the_shell_signature_equals_the_python_one() -> None:
    line = next(x for x in shell_block("The same from a shell").splitlines() if x.startswith("SIG="))
    body = '{"refund_id": "R1", "order_id": "O1", "type": "refund_only"}'
    script = f'{line}\necho -n "$SIG"'
    env = os.environ | {"BODY": body, "TS": "1794364200", "PARCEL_MONITOR_REFUND_SECRET": SECRET}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=True)
    expected = SNIPPET["sign"](SECRET, body.encode(), 1794364200)["X-Parcel-Monitor-Signature"]
    assert f"sha256={done.stdout}" == expected


@pytest.mark.skipif(not (shutil.which("md5sum") and shutil.which("curl")), reason="needs md5sum and curl")
def test_the_kuaidi100_push_recipe_is_acknowledged(api: ApiServer) -> None:
    with api.client() as http:
        http.post(
            "/api/v1/shipments",
            json={
                "order_id": "O1",
                "carrier": "kuaidi100",
                "tracking_no": "ZT7800000000003",
                "shipped_at": "2026-11-10T18:00:00+08:00",
            },
        )
    recipe = shell_block("post a push signed as Kuaidi100 signs it")
    push = fixture("push_callback")
    env = os.environ | {"PM": api.url, "PARAM": push["param"], "KUAIDI100_SALT": push["salt"]}
    done = subprocess.run(["bash", "-c", recipe], env=env, capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(done.stdout) == {"result": True, "returnCode": "200", "message": "成功"}
    assert stored(api.store)["tracking_event"] == len(json.loads(push["param"])["lastResult"]["data"])
    sign_line = recipe.splitlines()[0]
    echoed = subprocess.run(
        ["bash", "-c", f'{sign_line}\necho -n "$SIGN"'], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert echoed.stdout == push["sign"]


def test_the_docs_page_loads_everything_from_this_machine(api: ApiServer) -> None:
    with api.client(token=None) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        html = page.text
        # no address off the machine anywhere in the page (the CDN, the online validator, a font)
        assert re.findall(r"(?:https?:)?//[\w.-]+", html) == []
        local = re.findall(r"""(?:src|href)="([^"]+)"|url: '([^']+)'""", html)
        urls = {a or b for a, b in local}
        kinds = {"/docs/assets/swagger-ui-bundle.js": "javascript", "/docs/assets/swagger-ui.css": "text/css"}
        assert set(kinds) | {"/openapi.json", "/docs/assets/favicon-32x32.png"} == urls
        for url in urls:
            answer = http.get(url)
            assert answer.status_code == 200, url
            assert len(answer.content) > 500, url
            expected = kinds.get(url) or ("json" if url.endswith(".json") else "image/png")
            assert expected in answer.headers["content-type"], (url, answer.headers["content-type"])
        assert b"SwaggerUIBundle" in http.get("/docs/assets/swagger-ui-bundle.js").content
        assert http.get("/redoc").status_code == 404
