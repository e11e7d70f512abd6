"""What every benchmark provides to the eval task: problems, prompts and a scorer.

A benchmark turns its data into `Problem`s with a stable id, builds the prompt text the model sees,
cuts completions at its stop strings and scores them (exact match, math-verify, or sandboxed
tests). The eval task only talks to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Problem:
    """One evaluation problem.

    Attributes:
        id: Stable identifier (used to resume an interrupted eval).
        prompt: The text the model is conditioned on.
        answer: The gold answer (for code benchmarks: the tests; see the benchmark).
        meta: Anything else the scorer needs.
    """

    id: str
    prompt: str
    answer: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The scorer's judgement of one completion: `correct`, what it extracted, and why."""

    correct: bool
    extracted: str | None
    detail: str = ""


class Benchmark(ABC):
    """A problem set with its prompt convention and its answer checker.

    Args:
        gen_length: Response canvas the sampler decodes for this benchmark.
        block_length: Semi-autoregressive block length used with it.
    """

    name: str = "benchmark"
    # the prompt/answer convention, recorded in results.json (EVALUATION.md)
    convention: str | None = None
    stop_strings: Sequence[str] = ()

    def __init__(self, gen_length: int, block_length: int) -> None:
        self.gen_length, self.block_length = gen_length, block_length

    @abstractmethod
    def problems(self) -> list[Problem]:
        """The problems to evaluate, in a fixed order."""

    @abstractmethod
    def score(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """Judge each completion (already cut at the stop strings) against its problem."""

    def use_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Give the benchmark the backbone's tokenizer (for chat-template prompts; default no-op).

        A task calls this before `problems()`; benchmarks that format prompts with the tokenizer
        (`chat_template: true`) override it.
        """
        del tokenizer  # the default prompt is plain text

    def cut(self, completion: str) -> str:
        """Truncate a completion at the first stop string (a DLM fills a fixed canvas)."""
        ends = [i for s in self.stop_strings if (i := completion.find(s)) >= 0]
        return completion[: min(ends)] if ends else completion
