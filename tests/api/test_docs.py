"""docs/api.md's recipes work as written: the shell signing and the Kuaidi100 push signature."""

from __future__ import annotations

import json
import os
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
