"""Tenant regexes on google-re2: linear time, validated at save time, compiled once per rule version.

Only `import re2` (google-re2) is used: it matches in time linear in the input, so no pattern a tenant
writes can hang a worker (`(a+)+$` on 100k characters answers in well under a millisecond).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2

ALLOWED_FLAGS = "ims"
MAX_PATTERN_LENGTH = 2000
# `/pattern/flags` literals (the JavaScript notation many tenants paste) are split into pattern + flags.
_LITERAL = re.compile(r"^/(?P<pattern>.+)/(?P<flags>[a-zA-Z]*)$", re.DOTALL)


class PatternError(ValueError):
    """A pattern RE2 cannot (or will not) run; the message names the problem for the tenant."""


# RE2's own messages, mapped to what the tenant wrote. Order matters: the first match wins.
_EXPLANATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"invalid escape sequence: \\[1-9]"), "backreferences (\\1) are not supported"),
    (re.compile(r"invalid escape sequence: \\k"), "named backreferences (\\k<name>) are not supported"),
    (re.compile(r"invalid perl operator: \(\?P(?:[=>]|$)"), "named backreferences ((?P=name)) are not supported"),
    (re.compile(r"invalid perl operator: \(\?<[=!]"), "look-behind ((?<=…) or (?<!…)) is not supported"),
    (re.compile(r"invalid perl operator: \(\?[=!]"), "look-ahead ((?=…) or (?!…)) is not supported"),
    (re.compile(r"invalid perl operator: \(\?>"), "atomic groups ((?>…)) are not supported"),
    (re.compile(r"bad repetition operator: [*+?}]\+"), "possessive quantifiers (a++, a*+, a?+) are not supported"),
    (re.compile(r"invalid repetition size"), "repeat counts above 1000 (e.g. {1001}) are not supported"),
]


@dataclass(frozen=True)
class ParsedPattern:
    pattern: str
    flags: str


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    return options


def normalize(pattern: str, flags: str = "") -> ParsedPattern:
    """Split a `/pattern/flags` literal; check the flags. Raises PatternError."""
    pattern = pattern or ""
    literal = _LITERAL.match(pattern.strip()) if pattern.strip().startswith("/") else None
    if literal:
        pattern = literal["pattern"]
        flags = (flags or "") + literal["flags"]
    unknown = sorted({f for f in flags or "" if f not in ALLOWED_FLAGS})
    if unknown:
        raise PatternError(
            f"unsupported flag(s) {', '.join(unknown)}: use i (ignore case), m (multi-line), s (dot all)"
        )
    ordered = "".join(f for f in ALLOWED_FLAGS if f in (flags or ""))
    return ParsedPattern(pattern=pattern, flags=ordered)


def effective(pattern: str, flags: str) -> str:
    """The pattern with its flags inline, as RE2 (and an RE2 Set) compiles it."""
    return f"(?{flags}){pattern}" if flags else pattern


def explain(error: Exception) -> str:
    raw = error.args[0] if error.args else str(error)
    message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for signature, explanation in _EXPLANATIONS:
        if signature.search(message):
            return explanation
    return f"invalid pattern: {message}"


def compile_pattern(pattern: str, flags: str = ""):
    """Compile with RE2, or raise PatternError naming what is wrong."""
    if not pattern:
        raise PatternError("a regex trigger needs a pattern")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(effective(pattern, flags), _options())
    except re2.error as exc:
        raise PatternError(explain(exc)) from None


def validate(pattern: str, flags: str = "") -> ParsedPattern:
    """What the API and the admin call before saving a regex trigger."""
    parsed = normalize(pattern, flags)
    compiled = compile_pattern(parsed.pattern, parsed.flags)
    bad_names = [name for name in compiled.groupindex if not name.isidentifier()]
    if bad_names:
        raise PatternError(f"group names must be identifiers: {', '.join(bad_names)}")
    return parsed


class PatternSet:
    """A prefilter over many patterns: which of them could match, in one pass over the text.

    Building one is most of the cost of compiling a large rule set, so it is also the check that a
    pattern parses: `indexes[i]` is the set index of `patterns[i]`, or None when RE2 refused it (the
    rule compiles lazily and is reported as not compiling). RE2 sets are DFA-only, so they are split
    into chunks to keep each automaton small. A chunk that RE2 cannot compile is marked "always a
    candidate". Every candidate is confirmed by its own compiled pattern, so the set never adds a
    match; the one way it could miss one is an RE2 DFA running out of memory mid-search, which the
    chunk size, the memory budget and the message length limit keep out of reach (the engine uses a
    set only for large rule counts).
    """

    CHUNK = 512
    MAX_MEM = 64 << 20

    def __init__(self, patterns: list[str]) -> None:
        self.indexes: list[int | None] = []
        self.size = 0  # how many patterns the set holds (those RE2 accepted)
        self._chunks: list[tuple[int, Any, int]] = []
        chunk, start = None, 0
        for pattern in patterns:
            if chunk is None:
                chunk, start = self._new_set(), self.size
            try:
                chunk.Add(pattern)
            except re2.error:
                self.indexes.append(None)
                continue
            self.indexes.append(self.size)
            self.size += 1
            if self.size - start == self.CHUNK:
                self._close(chunk, start)
                chunk = None
        if chunk is not None and self.size > start:
            self._close(chunk, start)

    def _new_set(self):
        options = _options()
        options.max_mem = self.MAX_MEM
        return re2.Set.SearchSet(options)

    def _close(self, chunk, start: int) -> None:
        try:
            chunk.Compile()
        except re2.error:
            chunk = None
        self._chunks.append((start, chunk, self.size - start))

    def candidates(self, text: str) -> set[int]:
        found: set[int] = set()
        for start, compiled, size in self._chunks:
            if compiled is None:
                found.update(range(start, start + size))
                continue
            found.update(start + index for index in compiled.Match(text) or ())
        return found
