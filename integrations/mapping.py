"""Response mapping: `variable ← path` with JMESPath doing the evaluation.

Paths are dot notation with indexes (`data.price.amount`, `items[0].id`); a leading `response.` is
accepted; `status_code` and `headers.<name>` (lower-case names) read the response's status and
headers. Values keep their JSON types; a path that does not resolve maps to null and is reported.

Evaluation is bounded, because a short expression can grow exponentially (`x | [@,@] | [@,@] …`) and
mappings run on calls anonymous widget visitors trigger: at save, an expression's length and node
count; at run time, a budget of interpreter steps and time, of items in any intermediate list or
object, of characters in any string built, and of the result's JSON size. An expression over budget
maps to null and is reported, like a path that does not resolve.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import jmespath
from jmespath import functions as jmespath_functions
from jmespath.exceptions import JMESPathError
from jmespath.visitor import Options, TreeInterpreter

META_ROOTS = ("status_code", "headers")
MAX_EXPRESSION_CHARS = 1000
MAX_EXPRESSION_NODES = 200
MAX_STEPS = 50_000
MAX_SECONDS = 0.25
MAX_ITEMS = 10_000
MAX_CHARS = 1_000_000
MAX_RESULT_BYTES = 256 * 1024


class OverBudget(JMESPathError):
    """Evaluation stopped: the expression did more work or built more than a mapping may."""


def json_size(value: Any, limit: int) -> int:
    """The JSON size of `value`, counted only up to `limit` (shared sub-values are counted each time
    they appear, as serialising them would, without serialising anything)."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + len(item)
            for key, child in item.items():
                total += len(str(key)) + 3
                stack.append(child)
        elif isinstance(item, list):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += len(str(item))
    return total


class _BoundedFunctions(jmespath_functions.Functions):
    """The built-ins whose output can dwarf their input, checked before they build it."""

    @jmespath_functions.signature({"types": ["string"]}, {"types": ["array-string"]})
    def _func_join(self, separator, array):
        if sum(len(item) for item in array) + len(separator) * len(array) > MAX_CHARS:
            raise OverBudget("join result too large")
        return separator.join(array)

    @jmespath_functions.signature({"types": []})
    def _func_to_string(self, arg):
        if not isinstance(arg, str) and json_size(arg, MAX_CHARS) > MAX_CHARS:
            raise OverBudget("to_string result too large")
        return super()._func_to_string(arg)


_FUNCTIONS = _BoundedFunctions()


class _BoundedInterpreter(TreeInterpreter):
    def __init__(self) -> None:
        super().__init__(Options(custom_functions=_FUNCTIONS))
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def visit(self, node, *args, **kwargs):
        self.steps += 1
        if self.steps > MAX_STEPS or (self.steps % 64 == 0 and time.monotonic() > self.deadline):
            raise OverBudget("expression took too many steps")
        result = super().visit(node, *args, **kwargs)
        if isinstance(result, (list, dict)) and len(result) > MAX_ITEMS:
            raise OverBudget("expression built too many items")
        if isinstance(result, str) and len(result) > MAX_CHARS:
            raise OverBudget("expression built too long a string")
        return result


def _node_count(node: Any) -> int:
    count, stack = 0, [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += 1
            stack.extend(item.get("children") or [])
    return count


def compile_expression(text: str) -> Any:
    """A compiled JMESPath expression within the save-time bounds; ValueError with a readable message."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        compiled = jmespath.compile(text)
    except JMESPathError as exc:
        raise ValueError(f"invalid path {text!r}: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # jmespath's parser recurses once per nesting level
        raise ValueError(f"invalid path {text[:40]!r}…: nested too deeply") from None
    if _node_count(compiled.parsed) > MAX_EXPRESSION_NODES:
        raise ValueError(f"expression too complex (more than {MAX_EXPRESSION_NODES} parts)")
    return compiled


def search(expression: Any, data: Any) -> Any:
    """Evaluate a compiled expression within the run-time budget; raises `OverBudget` (a JMESPathError)
    when it does too much or its result is too large."""
    value = _BoundedInterpreter().visit(expression.parsed, data)
    if json_size(value, MAX_RESULT_BYTES) > MAX_RESULT_BYTES:
        raise OverBudget("result too large")
    return value


@lru_cache(maxsize=2048)
def compile_path(path: str) -> tuple[bool, Any]:
    """(reads response metadata?, compiled expression); raises ValueError with a readable message."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("path must be a non-empty string")
    path = path.strip()
    meta = path.split(".", 1)[0].split("[", 1)[0] in META_ROOTS
    if path.startswith("response."):
        path = path[len("response.") :]
    return meta, compile_expression(path)


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
            value = search(expression, meta if reads_meta else body)
        except JMESPathError:  # a function given the wrong type by this response, or over budget
            value = None
        mapped[variable] = value
        if value is None:
            unresolved.append(path)
    return mapped, unresolved
