r"""MATH (Hendrycks et al. 2021) and MATH-500: competition maths, scored on the `\boxed{}` answer.

Gold = the content of the last `\boxed{}` of `solution` (brace matching), or the `answer` field
where the dataset has one (MATH-500, the PRM800K subset: `problem, solution, answer, subject,
level, unique_id`). The completion's answer is its last `\boxed{}`; a completion without one is
wrong. Checks (`math_check.py`): math-verify (primary, in worker processes with a hard timeout),
or Hendrycks-style normalised string equality; either one makes it correct, and `detail` says
which.

Prompt convention: zero-shot, the problem followed by an instruction to box the final answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from backplay_exp.benchmarks.base import Problem, Verdict
from backplay_exp.benchmarks.dataset import DatasetBenchmark, fill
from backplay_exp.benchmarks.loading import check_rows, load_rows
from backplay_exp.benchmarks.math_check import Check, MathVerifier, string_equal

BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*")
SCHEMA = {"problem": str, "solution": str}


def last_boxed(text: str) -> str | None:
    r"""Content of the last `\boxed{...}` / `\fbox{...}` (braces matched), or of `\boxed 5`.

    Returns None when there is none or its braces are not closed.
    """
    starts = list(BOXED_RE.finditer(text))
    if not starts:
        return None
    i = starts[-1].end()
    if i >= len(text):
        return None
    if text[i] != "{":  # "\boxed 5" (no braces): up to the next space or dollar
        return re.split(r"[\s$]", text[i:], maxsplit=1)[0] or None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def gold_answer(row: dict, index: int) -> str:
    """The gold answer of a MATH row: its `answer` field, else the last box of `solution`.

    Raises:
        ValueError: naming the row when neither gives an answer.
    """
    if isinstance(row.get("answer"), str) and row["answer"].strip():
        return row["answer"]
    boxed = last_boxed(row["solution"])
    if boxed is None:
        raise ValueError(f"math: row {index}: field 'solution' has no \\boxed{{}} answer")
    return boxed


def verdict(gold: str, predicted: str | None, check: Check | None) -> Verdict:
    """Combine math-verify's check and normalised string equality into a verdict."""
    if predicted is None:
        return Verdict(correct=False, extracted=None, detail="no \\boxed{} answer")
    strings = string_equal(gold, predicted)
    verified = check is not None and check.equal
    why_not = check.error if check is not None and check.error else "math-verify: not equal"
    if verified:
        detail = "math-verify: equal"
    elif strings:
        detail = f"string match ({why_not})"
    else:
        detail = why_not
    return Verdict(correct=verified or strings, extracted=predicted, detail=detail)


class MathBenchmark(DatasetBenchmark):
    r"""MATH / MATH-500 with `\boxed{}` answers checked by math-verify.

    Args:
        template: The prompt; placeholder `{problem}`.
        verify_workers: math-verify worker processes.
        verify_timeout_s: Seconds per check before the worker is killed.
        verify_memory_mb: Address-space limit of each worker.
        verify_startup_s: Seconds a worker may take to import sympy and math-verify.
        dataset: The keys of `DatasetSpec`.
    """

    name = "math"

    def __init__(
        self,
        template: str,
        verify_workers: int,
        verify_timeout_s: float,
        verify_memory_mb: int,
        verify_startup_s: float,
        **dataset: Any,
    ) -> None:
        super().__init__(**dataset)
        self.template = template
        self.verifier = MathVerifier(
            verify_workers, verify_timeout_s, verify_memory_mb, verify_startup_s
        )

    def load_problems(self) -> list[Problem]:
        """Every problem of the split."""
        rows = load_rows(self.source, self.split)
        check_rows(self.name, rows, SCHEMA)
        return [
            Problem(
                id=str(row.get("unique_id") or f"math/{self.split}/{i}"),
                prompt=fill(self.template, problem=row["problem"]),
                answer=gold_answer(row, i),
                meta={k: row[k] for k in ("level", "type", "subject") if k in row},
            )
            for i, row in enumerate(rows)
        ]

    def score(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """math-verify (parallel, timed) or normalised string equality of the last box."""
        predicted = [last_boxed(c) for c in completions]
        todo = [i for i, p in enumerate(predicted) if p is not None]
        pairs = [(problems[i].answer, "\\boxed{" + str(predicted[i]) + "}") for i in todo]
        checks: list[Check | None] = [None] * len(completions)
        for i, check in zip(todo, self.verifier.check_many(pairs), strict=True):
            checks[i] = check
        return [
            verdict(p.answer, pred, check)
            for p, pred, check in zip(problems, predicted, checks, strict=True)
        ]
