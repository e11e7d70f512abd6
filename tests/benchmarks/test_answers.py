"""Answer extraction and checking, by hand-written cases (tricky ones included)."""

from __future__ import annotations

import sys

import pytest

from backplay_exp.benchmarks import math_check
from backplay_exp.benchmarks.base import Problem
from backplay_exp.benchmarks.code import extract_code, first_fenced_block, harden_asserts
from backplay_exp.benchmarks.gsm8k import extract_answer, gold_answer, same_number
from backplay_exp.benchmarks.math import last_boxed, verdict
from backplay_exp.benchmarks.math_check import MathVerifier, string_equal
from tests.benchmarks.conftest import build_benchmark

# --- GSM8K ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "gold", "correct"),
    [
        ("She pays 2 * 500 = 1,000 dollars.\n#### 1,000", "1000", True),
        ("The total is $5.00.", "5", True),
        ("#### 18.0", "18", True),
        ("So the answer is 18.", "18", True),
        ("#### -3", "-3", True),
        ("#### 0.5", "1", False),
        ("First 3 apples, then 4 more: 7 in all. #### 7 and 12 other numbers", "7", True),
        ("We get 12 eggs and sell 9, so 3 left.", "3", True),  # flexible: the last number
        ("I do not know.", "3", False),  # no answer at all
        ("", "3", False),
        ("#### seventy two, i.e. 72", "72", True),  # no number after ####: fall back to the last
    ],
)
def test_gsm8k_answers(completion, gold, correct):
    got, _ = extract_answer(completion)
    assert (got is not None and same_number(got, gold)) is correct


def test_gsm8k_extraction_modes():
    assert extract_answer("12 then 13\n#### 12") == ("12", "strict")
    assert extract_answer("12 then 13") == ("13", "flexible")
    assert extract_answer("none") == (None, "no number")
    assert extract_answer("$1,234,567.50 total") == ("$1,234,567.50", "flexible")


def test_gsm8k_number_comparison():
    assert same_number("1,000", "1000.00")
    assert same_number("$5.00", "5")
    assert same_number("18.", "18")
    assert not same_number("1,000", "100")
    assert not same_number("abc", "abc")  # not numbers: never equal


def test_gsm8k_cut_first_then_extract():
    """The canvas after the answer holds another question; cutting at it keeps the right number."""
    bench = build_benchmark("gsm8k", path="unused.jsonl")
    completion = "2 + 3 = 5.\n#### 5\n\nQuestion: What is 10 + 20?\nAnswer: 30"
    problem = Problem(id="p", prompt="", answer="5")
    [v] = bench.score([problem], [bench.cut(completion)])
    assert v.correct and v.extracted == "5" and v.detail == "strict"
    [v] = bench.score([problem], [bench.cut("So 5 apples\nQuestion: and 30?")])
    assert v.correct and v.detail == "flexible"


def test_gsm8k_gold_answer():
    assert gold_answer("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", 0) == "72"
    assert gold_answer("...\n#### 1,600", 0) == "1600"
    with pytest.raises(ValueError, match="row 7: field 'answer'"):
        gold_answer("no final answer", 7)


# --- MATH ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "boxed"),
    [
        (r"so $\boxed{\frac{\sqrt{3}}{2}}$.", r"\frac{\sqrt{3}}{2}"),
        (r"\boxed{1} first, then \boxed{\text{(A)}}", r"\text{(A)}"),
        (r"\boxed 5$", "5"),
        (r"\fbox{x^2}", "x^2"),
        (r"\boxed{unclosed", None),
        ("no box", None),
        ("", None),
    ],
)
def test_last_boxed(text, boxed):
    assert last_boxed(text) == boxed


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier(workers=1, timeout_s=5.0, memory_mb=4096, startup_s=120.0)


@pytest.mark.parametrize(
    ("gold", "completion", "correct"),
    [
        (r"\frac{1}{2}", r"The answer is $\boxed{0.5}$.", True),
        ("0.5", r"\boxed{\frac{1}{2}}", True),
        (r"\text{(A)}", r"\boxed{\text{(A)}}", True),
        (r"\text{(A)}", r"\boxed{A}", True),
        (r"\text{(B)}", r"\boxed{\text{(A)}}", False),
        ("1,000", r"\boxed{1000}", True),
        ("5", r"\boxed{\$5.00}", True),
        (r"\frac{\sqrt{3}}{2}", r"\boxed{\dfrac{\sqrt3}{2}}", True),
        ("x^2+1", r"\boxed{1+x^2}", True),
        ("3", r"I think it is 3.", False),  # no \boxed{} at all
        ("3", r"\boxed{}", False),
    ],
)
def test_math_answers(verifier, gold, completion, correct):
    predicted = last_boxed(completion)
    check = None if predicted is None else verifier.check(gold, "\\boxed{" + predicted + "}")
    result = verdict(gold, predicted, check)
    assert result.correct is correct, result
    if predicted is None:
        assert result.detail == "no \\boxed{} answer"


def test_math_string_match_backs_up_math_verify():
    assert string_equal(r"\dfrac{1}{2}", "0.5")
    assert string_equal(r"5 \text{ cm}", "5")
    assert string_equal("k = 3", "3")
    assert string_equal(r"\frac12", "1/2")
    assert not string_equal("2", "3")
    failed = math_check.Check(False, "math-verify timed out after 5s")
    result = verdict(r"\frac{1}{2}", r"\frac12", failed)
    assert result.correct and result.detail.startswith("string match (math-verify timed out")


def test_math_verify_hang_is_killed_and_the_worker_restarts(monkeypatch):
    """A check that never answers is killed at its hard timeout; the next check works."""
    hang = "print('ready', flush=True)\nimport time\ntime.sleep(600)\n"
    real = math_check.worker_command
    monkeypatch.setattr(math_check, "worker_command", lambda m, t: [sys.executable, "-c", hang])
    verifier = MathVerifier(workers=1, timeout_s=0.5, memory_mb=4096, startup_s=30.0)
    check = verifier.check("1", r"\boxed{1}")
    assert check == math_check.Check(False, "math-verify timed out after 0.5s")
    monkeypatch.setattr(math_check, "worker_command", real)
    assert verifier.check("1", r"\boxed{1}").equal


# --- code extraction -----------------------------------------------------------------------------


def test_fenced_block_wins():
    chatty = "Sure! Here it is:\n```python\ndef f(x):\n    return x\n```\nHope it helps."
    assert first_fenced_block(chatty) == "def f(x):\n    return x\n"
    assert extract_code(chatty) == "def f(x):\n    return x\n"
    assert first_fenced_block("```\ndef g():\n    pass") == "def g():\n    pass"  # unclosed
    assert first_fenced_block("no fence") is None


def test_prose_around_code_is_trimmed():
    chatty = "Here is my solution.\ndef f(x):\n    return x + 1\nThis adds one to x."
    assert extract_code(chatty) == "def f(x):\n    return x + 1\n"
    plain = "def f(x):\n    return x\n"
    assert extract_code(plain) == plain
    hopeless = "this is not code at all ("
    assert extract_code(hopeless) == hopeless


def test_harden_asserts_keeps_messages_and_names_the_check():
    hardened = harden_asserts("assert f(1) == 2, 'bad'\nassert g(x) or h")
    assert "raise AssertionError('bad')" in hardened
    assert "if not (g(x) or h):" in hardened
    assert harden_asserts("def broken(:") == "def broken(:"
