"""Differential test: our renderer against handlebars.js (noEscape) on a shared corpus.

The corpus (handlebars_corpus.json) holds only standard Handlebars — no shorthand, no helpers of ours —
so every output must equal what handlebars.js renders. Node runs once for the whole corpus.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from integrations.templating import render

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"
CORPUS = json.loads((HERE / "handlebars_corpus.json").read_text(encoding="utf-8"))
CASES = [{"template": case["template"], "data": case.get("data", CORPUS["data"])} for case in CORPUS["cases"]]


@pytest.fixture(scope="module")
def handlebars_outputs() -> list[dict]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the handlebars.js differential test needs it")
    if not (JS_DIR / "node_modules" / "handlebars").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `make test` (scripts/test_deps.py runs npm ci)")
    completed = subprocess.run(
        ["node", str(JS_DIR / "render_handlebars.js")],
        input=json.dumps(CASES),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outputs = json.loads(completed.stdout)
    assert len(outputs) == len(CASES)
    return outputs


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({case["template"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["template"][:40] for c in CASES])
def test_matches_handlebars_js(index, handlebars_outputs):
    case, expected = CASES[index], handlebars_outputs[index]
    assert expected["ok"], f"handlebars.js refused a corpus template: {expected['error']}"
    assert render(case["template"], json.loads(json.dumps(case["data"]))).value == expected["output"]
