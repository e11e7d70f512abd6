"""The functions the repo's lm-eval task YAMLs name with `!function backplay_tasks.<name>`.

- the toy: its problems come from the job's own `benchmark` config (`task=lm_eval` passes it as
  lm-eval task metadata `backplay_benchmark`), so `backplay_toy` evaluates exactly the problems
  `task=eval` does; outside a job, the default `conf/benchmark/toy.yaml`;
- HumanEval / MBPP: the programs handed to the sandbox route (`backplay_exp/harness/code.py`),
  built with the project's own code extraction (`benchmarks/code.py`), and the split of the one
  MBPP file into test (task_id 11-510) and prompt (2-4) problems (EVALUATION.md).
"""

from __future__ import annotations

from typing import Any

import datasets

from backplay_exp.benchmarks.code import extract_code, first_fenced_block
from backplay_exp.benchmarks.mbpp import MARKERS
from backplay_exp.harness.code import pass_at_1 as sandbox_pass_at_1

# MBPP's published splits (Austin et al.; EVALUATION.md): test = task_id 11-510, prompt = 2-4
MBPP_TEST, MBPP_PROMPT = range(11, 511), range(2, 5)


def toy_benchmark(config: dict | None) -> Any:
    """The job's toy benchmark, or the default one of conf/ when not run by a job."""
    from hydra.utils import instantiate

    from backplay_exp.benchmarks.toy import ToyBenchmark

    if config is not None:
        bench = instantiate(config)
        if isinstance(bench, ToyBenchmark):
            return bench
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        raise RuntimeError("backplay_toy: pass the toy benchmark config as lm-eval metadata")
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(version_base="1.3", config_dir=str(conf)):
        return instantiate(compose("config", overrides=["benchmark=toy"]).benchmark)


def toy_dataset(backplay_benchmark: dict | None = None, **_: Any) -> datasets.DatasetDict:
    """The toy's test problems (`custom_dataset` of backplay_toy and backplay_toy_mc).

    Rows: `id`, `prompt`, `answer`, `response` (the reference chain), and for the
    multiple-choice task `choices` (the reference chain ending in each possible answer) and
    `gold` (the index of the right one).
    """
    bench = toy_benchmark(backplay_benchmark)
    rows = []
    for p in bench.problems():
        chain = p.meta["response"][: p.meta["response"].index("####") + len("####")]
        rows.append(
            {
                "id": p.id,
                "prompt": p.prompt,
                "answer": p.answer,
                "response": p.meta["response"],
                "choices": [f"{chain}{v}" for v in range(bench.task.modulus)],
                "gold": int(p.answer),
            }
        )
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def humaneval_programs(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """Prompt + completion per candidate (a fenced block's code instead, as `task=eval`)."""
    return [
        [doc["prompt"] + (block if (block := first_fenced_block(r)) is not None else r) for r in rs]
        for rs, doc in zip(resps, docs, strict=True)
    ]


def mbpp_programs(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """The code of each candidate, `[BEGIN]`/`[DONE]` markers dropped (as `task=eval`)."""
    del docs

    def code(text: str) -> str:
        for marker in MARKERS:
            text = text.replace(marker, "")
        return extract_code(text)

    return [[code(r) for r in rs] for rs in resps]


def mbpp_test_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """MBPP's test split (task_id 11-510) of the full file."""
    return dataset.filter(lambda row: row["task_id"] in MBPP_TEST)


def mbpp_prompt_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """MBPP's prompt split (task_id 2-4), the few-shot examples, in task_id order."""
    shots = dataset.filter(lambda row: row["task_id"] in MBPP_PROMPT)
    return shots.select(sorted(range(len(shots)), key=lambda i: shots[i]["task_id"]))


def pass_at_1(references: list[Any], predictions: list[Any]) -> float:
    """pass@1 from the sandbox's verdicts (an error naming `task=lm_eval` if not routed)."""
    return sandbox_pass_at_1(references, predictions)
