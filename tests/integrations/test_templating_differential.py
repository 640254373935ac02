"""Differential test: our renderer against handlebars.js (noEscape) on a shared corpus.

The corpus (handlebars_corpus.json) holds only standard Handlebars — no shorthand, no helpers of ours —
so every output must equal what handlebars.js renders. Node runs once for the whole corpus.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from integrations.templating import render

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"
CORPUS = json.loads((HERE / "handlebars_corpus.json").read_text(encoding="utf-8"))
CASES = [{"template": case["template"], "data": case.get("data", CORPUS["data"])} for case in CORPUS["cases"]]


def run_handlebars_js(cases: list[dict]) -> list[dict]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the handlebars.js differential test needs it")
    if not (JS_DIR / "node_modules" / "handlebars").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `make test` (scripts/test_deps.py runs npm ci)")
    completed = subprocess.run(
        ["node", str(JS_DIR / "render_handlebars.js")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outputs = json.loads(completed.stdout)
    assert len(outputs) == len(cases)
    return outputs


@pytest.fixture(scope="module")
def handlebars_outputs() -> list[dict]:
    return run_handlebars_js(CASES)


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({case["template"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["template"][:40] for c in CASES])
def test_matches_handlebars_js(index, handlebars_outputs):
    case, expected = CASES[index], handlebars_outputs[index]
    assert expected["ok"], f"handlebars.js refused a corpus template: {expected['error']}"
    assert render(case["template"], json.loads(json.dumps(case["data"]))).value == expected["output"]


# --- random templates ---------------------------------------------------------------------------
# Blocks, else chains, comments, `~` and whitespace-only text nested at random: the places where
# standalone-line rules interact. A fixed seed keeps the run reproducible.

_TEXT = ["a", " ", "\n", "  \n", "\n  ", "\r\n", "x y", "\t", "  ", "b\n", "\n\n"]
_PATHS = ["name", "user.first", "../name", "@root.name", "missing", "empty", "[odd key]", "user/address/city",
          "../../name", "items.[0].name", "this", ".", "@index", "@key", "@first", "@last", "@../index", "n", "t",
          "str.length", "arr"]  # fmt: skip
# handlebars.js adds adjacent numbers/booleans (`{{n}}{{n}}` → "10"), so these are followed by a "|".
_NOT_TEXT = {"this", ".", "@index", "@key", "@first", "@last", "@../index", "n", "t", "str.length", "arr"}
_ARGS = ["items", "map", "user", "arr", "emptyArr", "missing", "t", "fl", "zero", "obj", "nested", "user.address",
         "this", "../items", "numKeys", "str"]  # fmt: skip


class _RandomTemplates:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def tilde(self) -> str:
        return self.rng.choice(["~", ""])

    def mustache(self) -> str:
        r, t = self.rng.random(), self.tilde
        if r < 0.1:
            field = self.rng.choice(["'a'", "0", "@index", "'name'", "@key"])
            return f"{{{{{t()}lookup {self.rng.choice(_ARGS)} {field}{t()}}}}}|"
        if r < 0.2:
            return f"{{{{{t()}!{self.rng.choice([' c ', 'x'])}{t()}}}}}"
        if r < 0.25:
            return f"{{{{{t()}!-- long }}}} --{t()}}}}}"
        path = self.rng.choice(_PATHS)
        return f"{{{{{t()}{path}{t()}}}}}" + ("|" if path in _NOT_TEXT else "")

    def block(self, depth: int) -> str:
        t, kind = self.tilde, self.rng.choice(["if", "unless", "each", "with", "section", "inverse"])
        if kind in ("section", "inverse"):
            name = self.rng.choice(["items", "user", "t", "fl", "emptyArr", "missing", "str", "zero"])
            sigil = "#" if kind == "section" else "^"
            opening, closing = f"{{{{{t()}{sigil}{name}{t()}}}}}", f"{{{{{t()}/{name}{t()}}}}}"
        else:
            extra = " includeZero=true" if kind == "if" and self.rng.random() < 0.2 else ""
            opening = f"{{{{{t()}#{kind} {self.rng.choice(_ARGS)}{extra}{t()}}}}}"
            closing = f"{{{{{t()}/{kind}{t()}}}}}"
        body, r = self.sequence(depth + 1), self.rng.random()
        if r < 0.3 and kind != "inverse":
            body += f"{{{{{t()}{self.rng.choice(['else', '^', ' else '])}{t()}}}}}" + self.sequence(depth + 1)
        elif r < 0.45 and kind in ("if", "unless", "each", "with"):
            body += f"{{{{{t()}else if {self.rng.choice(_ARGS)}{t()}}}}}" + self.sequence(depth + 1)
            if self.rng.random() < 0.5:
                body += f"{{{{{t()}else{t()}}}}}" + self.sequence(depth + 1)
        return opening + body + closing

    def sequence(self, depth: int = 0) -> str:
        parts = []
        for _ in range(self.rng.randint(0, 5)):
            r = self.rng.random()
            if r < 0.45:
                parts.append(self.rng.choice(_TEXT))
            elif r < 0.75 or depth >= 3:
                parts.append(self.mustache())
            else:
                parts.append(self.block(depth))
        return "".join(parts)


def test_random_templates_match_handlebars_js():
    generator = _RandomTemplates(seed=20261121)
    cases = [{"template": generator.sequence(), "data": CORPUS["data"]} for _ in range(400)]
    outputs = run_handlebars_js(cases)
    differences = []
    for case, expected in zip(cases, outputs, strict=True):
        assert expected["ok"], f"handlebars.js refused {case['template']!r}: {expected['error']}"
        ours = render(case["template"], json.loads(json.dumps(case["data"]))).value
        if ours != expected["output"]:
            differences.append((case["template"], expected["output"], ours))
    assert differences == []
