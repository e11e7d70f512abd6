"""GSM8K (Cobbe et al. 2021): grade-school maths word problems, scored on the final number.

Gold = the number after `#### ` at the end of `answer`. A completion (already cut at the stop
strings: a diffusion LM fills its whole canvas, and "last number" would otherwise pick up a
repeated "Question:" block) is scored on the number after its first `####` (lm-eval
*strict-match*), else on its last number (*flexible-extract*, the number LLaDA quotes).
Numbers are compared numerically after dropping `$`, thousands commas and a trailing `.`
(lm-eval compares strings, so "18.00" != "18" there; here they are equal).

Prompt convention (EVALUATION.md): `Question: ...` newline `Answer:`; lm-eval's 5-shot
(LLaDA-Base) puts the first `num_fewshot` train examples with their full rationale before it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from backplay_exp.benchmarks.base import Problem, Verdict
from backplay_exp.benchmarks.dataset import DatasetBenchmark, fill
from backplay_exp.benchmarks.loading import Source, check_rows, load_rows

NUMBER_RE = re.compile(r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\$?\.\d+")
FINAL_RE = re.compile(r"####\s*(.*)")
SCHEMA = {"question": str, "answer": str}


def to_number(text: str) -> Fraction | None:
    """`"$1,000.50"` -> Fraction(2001, 2); None if `text` is not a number."""
    cleaned = text.strip().replace("$", "").replace(",", "").rstrip(".")
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def extract_answer(completion: str) -> tuple[str | None, str]:
    """The answer number of a completion and how it was found.

    Returns:
        `(number, "strict")` for the number after the first `####`, else `(number, "flexible")`
        for the last number of the text, else `(None, "no number")`.
    """
    final = FINAL_RE.search(completion)
    if final and (match := NUMBER_RE.search(final.group(1))):
        return match.group(0), "strict"
    numbers = NUMBER_RE.findall(completion)
    if numbers:
        return numbers[-1], "flexible"
    return None, "no number"


def same_number(a: str, b: str) -> bool:
    """Whether two number strings denote the same value (`"1,000"` == `"1000.0"`)."""
    x, y = to_number(a), to_number(b)
    return x is not None and x == y


def gold_answer(solution: str, index: int) -> str:
    """The gold number of a GSM8K `answer` field.

    Raises:
        ValueError: naming the row if there is no `#### <number>`.
    """
    final = FINAL_RE.search(solution)
    number = final and NUMBER_RE.search(final.group(1))
    if not number:
        raise ValueError(f"gsm8k: row {index}: field 'answer' has no '#### <number>' at its end")
    return number.group(0).replace(",", "").replace("$", "")


class Gsm8kBenchmark(DatasetBenchmark):
    """GSM8K with lm-eval's prompt format and numeric answer comparison.

    Args:
        template: The question prompt; placeholder `{question}`.
        shot_template: One few-shot example; placeholders `{question}`, `{answer}`.
        shot_separator: Between examples (and before the question).
        num_fewshot: Examples taken from the start of `fewshot_split` (lm-eval: first 5).
        fewshot_split: Split the examples come from.
        fewshot_path: Local file of the examples; needed with few-shot when `path` is a file.
        dataset: The keys of `DatasetSpec`.
    """

    name = "gsm8k"

    def __init__(
        self,
        template: str,
        shot_template: str,
        shot_separator: str,
        num_fewshot: int,
        fewshot_split: str,
        fewshot_path: str | None,
        **dataset: Any,
    ) -> None:
        super().__init__(**dataset)
        self.template, self.shot_template = template, shot_template
        self.shot_separator, self.num_fewshot = shot_separator, num_fewshot
        self.fewshot_split, self.fewshot_path = fewshot_split, fewshot_path

    def load_problems(self) -> list[Problem]:
        """Every problem of the split, with the few-shot prefix."""
        rows = load_rows(self.source, self.split)
        check_rows(self.name, rows, SCHEMA)
        prefix = self.fewshot_prefix()
        return [
            Problem(
                id=f"gsm8k/{self.split}/{i}",
                prompt=prefix + fill(self.template, question=row["question"]),
                answer=gold_answer(row["answer"], i),
                meta={"solution": row["answer"]},
            )
            for i, row in enumerate(rows)
        ]

    def fewshot_prefix(self) -> str:
        """The first `num_fewshot` examples of the few-shot split, each followed by the separator.

        Raises:
            ValueError: if the examples' split cannot be found from a single-file `path`.
        """
        if self.num_fewshot <= 0:
            return ""
        source = self.source
        if self.fewshot_path is not None:
            source = Source(self.name, None, None, self.fewshot_path, source.cache_dir)
        elif source.path is not None and Path(source.path).is_file():
            raise ValueError(
                f"gsm8k: num_fewshot={self.num_fewshot} takes examples from the "
                f"{self.fewshot_split!r} split, but benchmark.path is a single file; "
                "set benchmark.fewshot_path (e.g. train.jsonl) or num_fewshot=0"
            )
        rows = load_rows(source, self.fewshot_split)[: self.num_fewshot]
        check_rows(f"{self.name} few-shot", rows, SCHEMA)
        shots = [fill(self.shot_template, question=r["question"], answer=r["answer"]) for r in rows]
        return "".join(shot + self.shot_separator for shot in shots)

    def score(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """Numeric match of the extracted number with the gold number."""
        verdicts = []
        for problem, completion in zip(problems, completions, strict=True):
            got, how = extract_answer(completion)
            correct = got is not None and same_number(got, problem.answer)
            verdicts.append(Verdict(correct=correct, extracted=got, detail=how))
        return verdicts
