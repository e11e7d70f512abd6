r"""Code tasks scored in the project's sandbox, never by lm-eval's unguarded `exec`.

lm-eval's code tasks (humaneval, mbpp and their `_instruct` / `_plus` variants) compute pass@k
with HF `evaluate`'s `code_eval`, which runs the model's program in the evaluating process
(guarded only by an environment variable). `route_code_tasks` rewires every loaded task marked
`unsafe_code` whose name starts with one of the routable prefixes (`lm_eval.sandbox_tasks`):

- a last filter, `SandboxRun`, builds each candidate's program the way `code_eval` does
  (`prediction + "\\n" + reference`, the reference being the task's `doc_to_target`: the test
  code) with the asserts hardened as in `task=eval` (`benchmarks/code.py`), and runs all of a
  task's programs in the project's `Sandbox` (`benchmarks/sandbox`), in parallel;
- the task's metrics become one, `pass@1`, the mean of the verdicts (one sample per task: no
  pass@k estimator is needed).

Any other `unsafe_code` task is refused unless `lm_eval.allow_unsandboxed_code=true`, which
hands it to lm-eval's own execution with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from lm_eval.api.filter import Filter
from lm_eval.api.metrics import mean

from backplay_exp.benchmarks.code import harden_asserts
from backplay_exp.benchmarks.sandbox import RunResult, Sandbox

log = logging.getLogger(__name__)

PASS_AT_1 = "pass@1"
UNROUTED = (
    "this code task's pass@1 runs only in the project's sandbox: evaluate it with "
    "`python -m backplay_exp task=lm_eval` (which routes it there), not with lm-eval's own CLI"
)


class SandboxRun(Filter):
    """Runs every candidate program of a task in the sandbox; a verdict dict per candidate.

    Args:
        sandbox: Runs the programs.
        tests_of: The task's `doc_to_target` (the test code appended to a candidate).
    """

    def __init__(self, sandbox: Sandbox, tests_of: Callable[[dict], str]) -> None:
        super().__init__()
        self.sandbox, self.tests_of = sandbox, tests_of

    def apply(self, resps: Iterable[Any], docs: Sequence[dict]) -> list[list[dict[str, Any]]]:
        """`resps`: per document a program (str) or a list of them."""
        candidates = [[r] if isinstance(r, str) else list(r) for r in resps]
        programs = [
            f"{code}\n{harden_asserts(str(self.tests_of(doc)))}\n"
            for codes, doc in zip(candidates, docs, strict=True)
            for code in codes
        ]
        verdicts = iter(self.sandbox.run_many(programs))
        return [[verdict(next(verdicts)) for _ in codes] for codes in candidates]


def verdict(result: RunResult) -> dict[str, Any]:
    """What a sample log keeps of a run: passed, and the sandbox's reason."""
    return {"passed": bool(result.passed), "detail": result.detail}


def pass_at_1(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """Share of a document's candidates that passed (lm-eval's metric signature).

    Raises:
        RuntimeError: if the predictions are not sandbox verdicts (the task was not routed).
    """
    del references  # the tests were appended to the programs by `SandboxRun`
    found = predictions[0]
    found = [found] if isinstance(found, Mapping) else list(found)
    if not found or not all(isinstance(v, Mapping) and "passed" in v for v in found):
        raise RuntimeError(UNROUTED)
    return sum(bool(v["passed"]) for v in found) / len(found)


def routable(task_name: str, prefixes: Sequence[str]) -> bool:
    """Whether a code task is one the sandbox route understands (by name prefix)."""
    return any(task_name.startswith(p) for p in prefixes)


def route(task: Any, sandbox: Sandbox) -> None:
    """Score `task` (an lm-eval `ConfigurableTask`) in `sandbox`.

    A `SandboxRun` goes after each of its filter pipelines and `pass@1` becomes its only metric.
    """
    for ensemble in task._filters:
        ensemble.filters.append(partial(SandboxRun, sandbox=sandbox, tests_of=task.doc_to_target))
    task._metric_fn_list = {PASS_AT_1: pass_at_1}
    task._metric_fn_kwargs = {PASS_AT_1: {}}
    task._aggregation_list = {PASS_AT_1: mean}
    task._higher_is_better = {PASS_AT_1: True}


def route_code_tasks(
    tasks: Mapping[str, Any],
    sandbox: Callable[[], Sandbox],
    prefixes: Sequence[str],
    allow_unsandboxed: bool,
) -> bool:
    """Route every `unsafe_code` task through the sandbox, or refuse it.

    Args:
        tasks: lm-eval's loaded tasks by name.
        sandbox: Builds the sandbox (only called when a task needs it).
        prefixes: Task-name prefixes the route handles (`lm_eval.sandbox_tasks`).
        allow_unsandboxed: Let lm-eval run the other code tasks itself, unguarded.

    Returns:
        Whether lm-eval must be told that code will run (`confirm_run_unsafe_code`).

    Raises:
        ValueError: naming a code task with no sandbox route, without the opt-in.
    """
    unsafe = [name for name, task in tasks.items() if getattr(task, "UNSAFE_CODE", False)]
    built: Sandbox | None = None
    for name in unsafe:
        if routable(name, prefixes):
            built = built or sandbox()
            route(tasks[name], built)
            log.info("%s: pass@1 is scored in the project's sandbox", name)
        elif allow_unsandboxed:
            log.warning("%s: model-written code runs UNSANDBOXED in lm-eval's own exec", name)
        else:
            raise ValueError(
                f"lm-eval task {name!r} executes model-written code and the project's sandbox "
                f"has no route for it (routed: names starting with {', '.join(prefixes)}); "
                "set lm_eval.allow_unsandboxed_code=true to let lm-eval run it unguarded"
            )
    return bool(unsafe)
