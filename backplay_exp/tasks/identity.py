"""What a job is, in `results.json`'s own fields, read from its config without loading a model.

A sweep's report places a job in its table cell by these fields (`report/jobs.py`: the method
label and k). A job that fails, or that a cluster kills before it can write anything, must
still land in its cell, as failed: its record carries them too (`tasks/runner.py`,
`backplay_exp/cluster/outcome.py`).
"""

from __future__ import annotations

from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

# tasks whose results.json holds an accuracy and an NFE (task=lm_eval: its first task's metric)
EVAL_TASKS = ("eval", "lm_eval")
# task functions whose option name is not their module's or their `run_<name>` suffix
TASK_OPTIONS = {"backplay_exp.tasks.harness.run": "lm_eval"}


def task_name(cfg: DictConfig) -> str:
    """The `task=` option a job runs (`eval`, `sft`, `head`, `lm_eval`, ...), from its function."""
    target = str(cfg.task._target_)
    if target in TASK_OPTIONS:
        return TASK_OPTIONS[target]
    module, function = target.rsplit(".", 1)
    return function.removeprefix("run_") if function != "run" else module.rsplit(".", 1)[-1]


def class_name(node: DictConfig | None) -> str | None:
    """The `name` attribute of the class a config node builds (`tiny`, `toy`), if it has one."""
    if node is None or "_target_" not in node:
        return None
    return getattr(get_class(str(node._target_)), "name", None)


def job_identity(cfg: DictConfig) -> dict[str, Any]:
    """The results.json fields that say what a job computes.

    Task, benchmark and backbone; for an eval job also its decoding arm (remask policy, k,
    commit rule, cache, model, artifact). Builds only the light objects (remask policy,
    sampler, artifact); loads no weights.
    """
    from backplay_exp.tasks.models import model_kind, model_stages
    from backplay_exp.tasks.registry import uses_artifact

    task = task_name(cfg)
    identity: dict[str, Any] = {
        "task": task,
        "benchmark": class_name(cfg.get("benchmark")),
        "backbone": class_name(cfg.get("backbone")),
    }
    if task not in EVAL_TASKS:
        return identity
    policy = instantiate(cfg.remask)
    decoder = instantiate(cfg.sampler, remasker=policy)
    model = model_kind(cfg, policy.uses_head)
    stages = model_stages(cfg, policy.uses_head)
    artifact = instantiate(cfg.artifact).name if uses_artifact(stages) else None
    described = decoder.describe()
    return identity | {
        "remask": decoder.name,
        "tokens_per_step": decoder.tokens_per_step,
        "schedule": described["schedule"],
        "commit_threshold": described["commit_threshold"],
        "cache": described["cache"],
        "model": model,
        "artifact": artifact,
    }


def method_label(result: dict[str, Any]) -> str:
    """The row a job belongs to: which model decoded, and with which policy.

    `SFT + confidence` (LLaDA), `head(lbc) + backplay` (BackPlay), `joint(lbc) + backplay`
    (the joint ablation), `SFT + random` (random remasking), ...
    """
    model = result.get("model") or ("head" if result.get("artifact") else "sft")
    trained = "SFT" if model == "sft" else f"{model}({result.get('artifact')})"
    label = f"{trained} + {result.get('remask', '?')}"
    decoding = []  # how the sampler committed and cached, when not the paper's plain loop
    if result.get("commit_threshold") is not None:
        decoding.append(f"threshold {result['commit_threshold']}")
    if result.get("cache", "none") != "none":
        decoding.append(f"{result['cache']} cache")
    if result.get("variant"):
        decoding.append(result["variant"])
    return f"{label} ({', '.join(decoding)})" if decoding else label
