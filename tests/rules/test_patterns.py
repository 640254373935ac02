from __future__ import annotations

import time

import pytest

from rules import patterns


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(a)\1", "backreferences"),
        (r"(?P<x>a)(?P=x)", "named backreferences"),
        (r"foo(?=bar)", "look-ahead"),
        (r"foo(?!bar)", "look-ahead"),
        (r"(?<=a)b", "look-behind"),
        (r"(?<!a)b", "look-behind"),
        (r"(?>abc)", "atomic groups"),
        (r"a++", "possessive quantifiers"),
        (r"a*+b", "possessive quantifiers"),
        (r"a{1001}", "repeat counts above 1000"),
        (r"a{2,5000}", "repeat counts above 1000"),
        (r"[a-", "invalid pattern: missing ]"),
    ],
)
def test_unsupported_patterns_are_refused_with_the_problem_named(pattern, problem):
    with pytest.raises(patterns.PatternError) as caught:
        patterns.validate(pattern)
    assert problem in str(caught.value)


def test_slash_literals_are_split_into_pattern_and_flags():
    parsed = patterns.validate("/order #?(?P<id>\\d+)/i")
    assert parsed == patterns.ParsedPattern(pattern="order #?(?P<id>\\d+)", flags="i")
    assert patterns.compile_pattern(parsed.pattern, parsed.flags).search("ORDER #7")["id"] == "7"


def test_flags_m_and_s_and_unknown_flags():
    assert patterns.compile_pattern("^b$", "m").search("a\nb\nc")
    assert not patterns.compile_pattern("^b$", "").search("a\nb\nc")
    assert patterns.compile_pattern("a.b", "s").search("a\nb")
    assert not patterns.compile_pattern("a.b", "").search("a\nb")
    with pytest.raises(patterns.PatternError, match="unsupported flag"):
        patterns.validate("x", "g")


def test_catastrophic_pattern_answers_at_once_on_a_long_input():
    compiled = patterns.compile_pattern("(a+)+$")
    text = "a" * 200_000 + "!"
    started = time.perf_counter()
    assert compiled.search(text) is None
    assert time.perf_counter() - started < 0.5


def test_pattern_set_reports_the_candidates_and_each_is_confirmed():
    items = [patterns.effective(p, f) for p, f in [("price", "i"), (r"order #?\d+", ""), ("refund", "")]]
    candidate_set = patterns.PatternSet(items)
    assert candidate_set.candidates("What's the PRICE of order #12?") == {0, 1}
    assert candidate_set.candidates("hello") == set()
