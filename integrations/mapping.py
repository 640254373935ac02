"""Response mapping: `variable ← path` with JMESPath doing the evaluation.

Paths are dot notation with indexes (`data.price.amount`, `items[0].id`); a leading `response.` is
accepted; `status_code` and `headers.<name>` (lower-case names) read the response's status and
headers. Values keep their JSON types; a path that does not resolve maps to null and is reported.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

META_ROOTS = ("status_code", "headers")


@lru_cache(maxsize=2048)
def compile_path(path: str) -> tuple[bool, Any]:
    """(reads response metadata?, compiled expression); raises ValueError with a readable message."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("path must be a non-empty string")
    path = path.strip()
    meta = path.split(".", 1)[0].split("[", 1)[0] in META_ROOTS
    if path.startswith("response."):
        path = path[len("response.") :]
    try:
        return meta, jmespath.compile(path)
    except JMESPathError as exc:
        raise ValueError(f"invalid path {path!r}: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # jmespath's parser recurses once per nesting level
        raise ValueError(f"invalid path {path[:40]!r}…: nested too deeply") from None


def clean_mapping(value: Any) -> list[str]:
    """Problems with a mapping (`variable: message`), empty when valid."""
    if value in (None, ""):
        return []
    if not isinstance(value, dict):
        return ["must be an object of variable → path"]
    problems = []
    for variable, path in value.items():
        try:
            compile_path(path)
        except ValueError as exc:
            problems.append(f"{variable}: {exc}")
    return problems


def apply_mapping(mapping: dict, body: Any, status_code: int | None, headers: dict) -> tuple[dict, list[str]]:
    """(mapped values, paths that did not resolve)."""
    mapped: dict[str, Any] = {}
    unresolved: list[str] = []
    meta = {"status_code": status_code, "headers": headers}
    for variable, path in (mapping or {}).items():
        try:
            reads_meta, expression = compile_path(path)
        except ValueError:
            mapped[variable] = None
            unresolved.append(path)
            continue
        try:
            value = expression.search(meta if reads_meta else body)
        except JMESPathError:  # e.g. a function given the wrong type by this response
            value = None
        mapped[variable] = value
        if value is None:
            unresolved.append(path)
    return mapped, unresolved
