"""The documented receiver recipes (docs/calls.md), run as written: they accept a fresh callback and
refuse a replayed one — the hex header alone, an old timestamp, or a forged fresh timestamp."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from calls.webhooks import hex_signature, standard_signature
from tenants.models import generate_webhook_secret

DOCS = Path(__file__).resolve().parents[2] / "docs" / "calls.md"
BODY = b'{"event":"call.completed","call_id":"c1"}'


def _recipe(language: str) -> str:
    text = DOCS.read_text()
    match = re.search(rf"Verify in {language}[^\n]*:\n\n```\w+\n(.*?)```", text, re.S)
    assert match, f"docs/calls.md has no {language} recipe"
    return match.group(1)


def _headers(secret: str, *, age: int = 0, webhook_id: str = "msg_1") -> dict:
    timestamp = int(time.time()) - age
    return {
        "X-Switchboard-Signature": hex_signature(secret, BODY),
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, webhook_id, timestamp, BODY),
    }


def _cases(secret: str) -> dict[str, tuple[dict, bool]]:
    fresh = _headers(secret)
    captured = _headers(secret, age=3 * 86400)
    forged = {**captured, "webhook-timestamp": fresh["webhook-timestamp"]}  # replayed with a new timestamp
    hex_only = {"X-Switchboard-Signature": fresh["X-Switchboard-Signature"]}
    return {
        "fresh": (fresh, True),
        "replayed days later": (captured, False),
        "replayed with a forged timestamp": (forged, False),
        "hex header alone": (hex_only, False),
        "just past the tolerance": (_headers(secret, age=301), False),
    }


def test_the_python_recipe_accepts_fresh_callbacks_and_refuses_replays():
    namespace: dict = {}
    exec(compile(_recipe("Python"), str(DOCS), "exec"), namespace)
    secret = generate_webhook_secret()

    results = {name: namespace["verify"](secret, BODY, headers) for name, (headers, _) in _cases(secret).items()}

    assert results == {name: expected for name, (_, expected) in _cases(secret).items()}


def test_the_node_recipe_accepts_fresh_callbacks_and_refuses_replays(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    secret = generate_webhook_secret()
    cases = {name: headers for name, (headers, _) in _cases(secret).items()}
    lowered = {name: {k.lower(): v for k, v in headers.items()} for name, headers in cases.items()}
    script = tmp_path / "verify.js"
    script.write_text(
        _recipe("Node")
        + f"\nconst cases = {json.dumps(lowered)};\n"
        + f"const body = Buffer.from({json.dumps(BODY.decode())});\n"
        + "const out = {};\n"
        + f"for (const [name, headers] of Object.entries(cases)) out[name] = verify({json.dumps(secret)}, body, headers);\n"
        + "console.log(JSON.stringify(out));\n"
    )

    output = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=30, check=True).stdout

    assert json.loads(output) == {name: expected for name, (_, expected) in _cases(secret).items()}


def test_the_docs_say_the_hex_header_alone_gives_no_replay_protection():
    assert "on its own it gives no replay protection" in DOCS.read_text()
