"""What the real benchmarks share: rows from a dataset, a `limit`, and a prompt convention.

Conventions (EVALUATION.md): base models see a raw prompt (zero-shot or few-shot text);
instruct models see that text as the user turn of the tokenizer's chat template
(`chat_template: true`, which needs `use_tokenizer(backbone.tokenizer)` before `problems()`).
Templates are plain text with `{field}` placeholders filled by `fill` (not `str.format`, so LaTeX
braces in a template need no escaping). `convention` names the combination for the record.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from backplay_exp.benchmarks.base import Benchmark, Problem
from backplay_exp.benchmarks.loading import Source, take

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def fill(template: str, **fields: str) -> str:
    """Replace each `{name}` of `fields` in `template`; other braces are left alone."""
    for name, value in fields.items():
        template = template.replace("{" + name + "}", value)
    return template


@dataclass(frozen=True)
class DatasetSpec:
    """Where a benchmark's rows come from and how its prompts and completions are framed.

    Every dataset benchmark's config has these keys beside its own (conf/benchmark/*.yaml).

    Attributes:
        gen_length: Response canvas length.
        block_length: Semi-autoregressive block length.
        path: Local file or directory replacing the hub dataset (see `loading.py`).
        hub_name: Hub dataset id used when `path` is None.
        hub_config: Hub dataset config, if any.
        split: Split to evaluate (None: every split, for benchmarks that select by id).
        limit: Evaluate only the first `limit` problems (None: all).
        cache_dir: `datasets` cache directory (None: its default).
        convention: Name of the prompt convention below, recorded with the problems.
        chat_template: Wrap the prompt in the tokenizer's chat template (instruct models).
        stop_strings: The completion is cut at the first of these.
    """

    gen_length: int
    block_length: int
    path: str | None
    hub_name: str | None
    hub_config: str | None
    split: str | None
    limit: int | None
    cache_dir: str | None
    convention: str
    chat_template: bool
    stop_strings: Sequence[str]


class DatasetBenchmark(Benchmark):
    """A benchmark whose problems are rows of a dataset.

    Args:
        dataset: The keys of `DatasetSpec` (a missing or unknown one raises a TypeError).
    """

    def __init__(self, **dataset: Any) -> None:
        spec = DatasetSpec(**dataset)
        super().__init__(spec.gen_length, spec.block_length)
        self.source = Source(self.name, spec.hub_name, spec.hub_config, spec.path, spec.cache_dir)
        self.split, self.limit, self.convention = spec.split, spec.limit, spec.convention
        self.chat_template, self.stop_strings = spec.chat_template, tuple(spec.stop_strings)
        self._tokenizer: PreTrainedTokenizerBase | None = None

    @abstractmethod
    def load_problems(self) -> list[Problem]:
        """Every problem of the split, prompts as raw text (before the chat template)."""

    def use_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Keep the backbone's tokenizer for `chat_template` prompts."""
        self._tokenizer = tokenizer

    def format_prompt(self, text: str) -> str:
        """The prompt the model sees: `text`, or `text` as the user turn of the chat template.

        Raises:
            RuntimeError: if `chat_template` is on and no tokenizer was given.
        """
        if not self.chat_template:
            return text
        if self._tokenizer is None:
            raise RuntimeError(
                f"{self.name}: chat_template=true needs the backbone's tokenizer; call "
                "benchmark.use_tokenizer(backbone.tokenizer) before problems()"
            )
        return self._tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )

    def problems(self) -> list[Problem]:
        """The first `limit` problems, prompts formatted, convention recorded in `meta`."""
        problems = take(self.load_problems(), self.limit)
        return [
            replace(
                p,
                prompt=self.format_prompt(p.prompt),
                meta={**p.meta, "convention": self.convention},
            )
            for p in problems
        ]
