"""The lexer's rules for `parser.py`: handlebars.js's `src/handlebars.l` as regexes, tried in the
same order, plus our `{name}` shorthand in text, and the stream of a tag's tokens."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["LONG_COMMENT", "MU_TOKEN", "OPEN_TAG", "SHORTHAND", "SHORT_COMMENT", "TokenStream", "unescape_segment"]

_ID_CHARS = r"[^\s!\"#%-,\.\/;->@\[-\^`\{-~]+"
_LOOKAHEAD = r"(?=[=~}\s\/.)|])"
_LITERAL_LOOKAHEAD = r"(?=[~}\s)])"

MU_TOKEN = re.compile(
    "|".join(
        [
            r"(?P<OPEN_SEXPR>\()",
            r"(?P<CLOSE_SEXPR>\))",
            r"(?P<RAW>\{\{\{\{|\}\}\}\})",
            r"(?P<NESTED_OPEN>\{\{)",
            r"(?P<EQUALS>=)",
            r"(?P<DOTDOT>\.\.)",
            rf"(?P<DOT>\.){_LOOKAHEAD}",
            r"(?P<SEP>[\/.])",
            r"(?P<WS>\s+)",
            r"(?P<CLOSE_UNESCAPED>\}(?P<ustrip>~)?\}\})",
            r"(?P<CLOSE>(?P<strip>~)?\}\})",
            r'(?P<DQSTRING>"(?:\\"|[^"])*")',
            r"(?P<SQSTRING>'(?:\\'|[^'])*')",
            r"(?P<DATA>@)",
            rf"(?P<BOOLEAN>true|false){_LITERAL_LOOKAHEAD}",
            rf"(?P<UNDEFINED>undefined){_LITERAL_LOOKAHEAD}",
            rf"(?P<NULL>null){_LITERAL_LOOKAHEAD}",
            rf"(?P<NUMBER>-?[0-9]+(?:\.[0-9]+)?){_LITERAL_LOOKAHEAD}",
            r"(?P<OPEN_BLOCK_PARAMS>as\s+\|)",
            r"(?P<CLOSE_BLOCK_PARAMS>\|)",
            rf"(?P<ID>{_ID_CHARS}){_LOOKAHEAD}",
            r"(?P<LITERAL_ID>\[(?:\\\]|[^\]])*\])",
            r"(?P<INVALID>[\s\S])",
        ]
    )
)

OPEN_TAG = re.compile(
    r"\{\{(?P<strip>~)?(?:"
    r"(?P<raw>\{\{)"
    r"|(?P<partial>>|#>)"
    r"|(?P<decorator>#\*|\*)"
    r"|(?P<block>#)"
    r"|(?P<end>/)"
    r"|(?P<inverse>\^\s*(?P<istrip>~)?\}\})"
    r"|(?P<else>\s*else\s*(?P<estrip>~)?\}\})"
    r"|(?P<inverse_block>\^)"
    r"|(?P<else_chain>\s*else(?=[\s~]))"
    r"|(?P<unescaped>\{)"
    r"|(?P<long_comment>!--)"
    r"|(?P<comment>!)"
    r"|(?P<amp>&)"
    r")?"
)
LONG_COMMENT = re.compile(r"[\s\S]*?--(~)?\}\}")
SHORT_COMMENT = re.compile(r"[\s\S]*?\}\}")

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
SHORTHAND = re.compile(
    rf"\\\\\{{(?P<bs_var>{_IDENT})\}}|\\(?P<escaped>\{{{_IDENT}\}})|(?<![{{\\])\{{(?P<var>{_IDENT})\}}"
)


def unescape_segment(text: str) -> str:
    return re.sub(r"\\([\\\]])", r"\1", text)


class TokenStream:
    def __init__(self, tokens: list) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, ahead: int = 0) -> Any:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> Any:
        tok = self.peek()
        if tok is not None:
            self.i += 1
        return tok
