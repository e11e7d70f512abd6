"""lm-eval's results and sample logs as the run-directory contract of `task=eval`.

`results.json` gets one accuracy per job (the report's table and Pareto plot read it): the
chosen metric of the first task (`lm_eval.metric`: a `metric,filter` key such as
`exact_match,flexible-extract`, a bare metric name, or null for the task's first metric), with
the decoder's mean NFE / remasks over the same documents. Every metric of every task is kept
under `lm_eval`. `samples.jsonl` gets one line per document and task: the prompt, the
completion (generation) or the choices' log-likelihoods (multiple choice), what the filter
extracted, the metric's score, and the document's forward passes, remasks and edits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STDERR = "_stderr"


def metric_keys(task_results: Mapping[str, Any]) -> list[str]:
    """The `metric,filter` keys of one task's results, in lm-eval's order (no stderrs)."""
    return [k for k in task_results if "," in k and STDERR not in k]


def metric_key(task_results: Mapping[str, Any], wanted: str | None, task: str) -> str:
    """The key `lm_eval.metric` names for a task (its first metric if None).

    Raises:
        ValueError: naming the task's metrics when `wanted` is not one of them.
    """
    keys = metric_keys(task_results)
    if wanted is None and keys:
        return keys[0]
    matches = [k for k in keys if wanted in (k, k.split(",")[0])]
    if not matches:
        raise ValueError(
            f"lm_eval.metric={wanted!r} is not a metric of {task!r}; it has {', '.join(keys)}"
        )
    return matches[0]


def scores(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Every task's metric values (stderrs included), by task and `metric,filter` key."""
    return {
        task: {k: v for k, v in values.items() if "," in k and isinstance(v, int | float)}
        for task, values in results["results"].items()
    }


def sample_records(
    task: str,
    logged: Sequence[Mapping[str, Any]],
    key: str,
    stats: Mapping[tuple[str, int], Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One record per document of `task` (the `samples.jsonl` contract of `task=eval`).

    Args:
        task: The task's name.
        logged: lm-eval's logged samples of the task (one per document and filter).
        key: The `metric,filter` key whose filter and score the records keep.
        stats: Per (task, doc_id): the decoder's NFE, remasks, edits, tokens, wall time.
    """
    metric, filt = key.split(",", 1)
    records = []
    for sample in sorted((s for s in logged if s["filter"] == filt), key=lambda s: s["doc_id"]):
        doc_id = sample["doc_id"]
        stat = stats.get((task, doc_id), {})
        arguments, resps = sample["arguments"], sample["resps"]
        generated = len(arguments) == 1 and isinstance(resps[0][0], str)
        score = float(sample[metric])
        records.append(
            {
                "id": f"{task}/{doc_id}",
                "prompt": arguments[0][0],
                "completion": resps[0][0] if generated else None,
                "loglikelihoods": None if generated else [r[0][0] for r in resps],
                "answer": sample["target"],
                "extracted": sample["filtered_resps"][0] if generated else None,
                "correct": score == 1.0,
                "score": score,
                "nfe": stat.get("nfe", 0),
                "remasks": stat.get("remasks", 0),
                "edits": stat.get("edits", 0),
                "tokens": stat.get("tokens", 0),
                "wall_s": stat.get("wall_s", 0.0),
            }
        )
    return records
