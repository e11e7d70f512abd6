r"""MBPP (Austin et al. 2021): short Python functions checked by three asserts each.

Data: the `full` config; test = task_id 11-510 (500 problems), prompt examples = 2, 3, 4
(EVALUATION.md). A local copy of the full data (all 974 rows, e.g. mbpp.jsonl) works as
`benchmark.path`: problems are selected by `task_id`, not by split.
Prompt (Austin et al., used by lm-eval and LLaDA): "You are an expert Python programmer, and
here is your task: {text} Your code should pass these tests:\n\n{tests}\n[BEGIN]\n", with
`num_fewshot` examples (target `{code}\n[DONE]`) before it; stop at `[DONE]`.
Program = `completion + test_setup_code + the three asserts`; pass = all asserts pass, no
exception, no timeout (`challenge_test_list` is unused, as everywhere). The setup goes after the
completion, not before it as EVALUATION.md writes: the one test problem with setup code (367)
builds trees from the `Node` class that the solution defines, so setup-first makes it unsolvable
(its own reference solution fails with a NameError); lm-eval and bigcode drop the setup code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backplay_exp.benchmarks.base import Problem
from backplay_exp.benchmarks.code import CodeBenchmark, extract_code, harden_asserts
from backplay_exp.benchmarks.dataset import fill
from backplay_exp.benchmarks.loading import check_rows, load_rows
from backplay_exp.benchmarks.sandbox import Sandbox

SCHEMA = {"task_id": int, "text": str, "code": str, "test_list": list, "test_setup_code": str}
MARKERS = ("[BEGIN]", "[DONE]")


class MbppBenchmark(CodeBenchmark):
    """MBPP test problems, run against their asserts in the sandbox.

    Args:
        sandbox: Runs the programs.
        task_ids: Inclusive `[first, last]` task_id range to evaluate (test split: 11-510).
        fewshot_ids: task_ids of the few-shot examples, in order (Austin et al.: 2, 3, 4).
        num_fewshot: How many of `fewshot_ids` to put in the prompt (0 = zero-shot).
        template: The task prompt; placeholders `{text}`, `{tests}` (asserts, one per line).
        shot_template: One example; `{text}`, `{tests}`, `{code}`.
        shot_separator: Between examples (and before the task).
        dataset: The keys of `DatasetSpec` (`split: null` reads every split and selects by id).
    """

    name = "mbpp"

    def __init__(
        self,
        sandbox: Sandbox,
        task_ids: Sequence[int],
        fewshot_ids: Sequence[int],
        num_fewshot: int,
        template: str,
        shot_template: str,
        shot_separator: str,
        **dataset: Any,
    ) -> None:
        super().__init__(**dataset)
        if len(task_ids) != 2 or task_ids[0] > task_ids[1]:
            raise ValueError(f"mbpp: task_ids must be [first, last], got {list(task_ids)}")
        if num_fewshot > len(fewshot_ids):
            raise ValueError(f"mbpp: num_fewshot={num_fewshot} > {len(fewshot_ids)} fewshot_ids")
        self.sandbox, self.task_ids = sandbox, (int(task_ids[0]), int(task_ids[1]))
        self.fewshot_ids, self.num_fewshot = [int(i) for i in fewshot_ids], num_fewshot
        self.template, self.shot_template = template, shot_template
        self.shot_separator = shot_separator

    def load_problems(self) -> list[Problem]:
        """Problems with task_id in range, sorted by task_id, with the few-shot prefix."""
        rows = load_rows(self.source, self.split)
        check_rows(self.name, rows, SCHEMA)
        by_id = {row["task_id"]: row for row in rows}
        first, last = self.task_ids
        selected = [by_id[i] for i in sorted(by_id) if first <= i <= last]
        if not selected:
            raise ValueError(f"mbpp: {self.source.describe()} has no task_id in {first}..{last}")
        prefix = self.fewshot_prefix(by_id)
        return [
            Problem(
                id=f"mbpp/{row['task_id']}",
                prompt=prefix + self.task_prompt(row),
                answer="\n".join(row["test_list"]),
                meta={"tests": row["test_list"], "setup": row["test_setup_code"]},
            )
            for row in selected
        ]

    def task_prompt(self, row: dict) -> str:
        """The prompt of one task (without examples)."""
        return fill(self.template, text=row["text"], tests="\n".join(row["test_list"]))

    def fewshot_prefix(self, by_id: dict[int, dict]) -> str:
        """The examples, each followed by the separator.

        Raises:
            ValueError: if an example's task_id is not in the data.
        """
        ids = self.fewshot_ids[: self.num_fewshot]
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(
                f"mbpp: few-shot task_ids {missing} are not in {self.source.describe()} "
                "(they are in the 'prompt' split); use the full data or num_fewshot=0"
            )
        shots = [
            fill(self.shot_template, text=by_id[i]["text"],
                 tests="\n".join(by_id[i]["test_list"]), code=by_id[i]["code"])
            for i in ids
        ]  # fmt: skip
        return "".join(shot + self.shot_separator for shot in shots)

    def extract(self, completion: str) -> str:
        """The code, without `[BEGIN]`/`[DONE]` markers the model may have repeated."""
        for marker in MARKERS:
            completion = completion.replace(marker, "")
        return extract_code(completion)

    def program(self, problem: Problem, code: str) -> str:
        """The function, the test setup code, then the three asserts."""
        tests = harden_asserts("\n".join(problem.meta["tests"]))
        return f"{code}\n\n{problem.meta['setup']}\n{tests}\n"
