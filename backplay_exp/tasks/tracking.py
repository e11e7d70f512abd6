"""W&B runs of a sweep's jobs: one named run per job, grouped by sweep, with its whole config.

Every job of a sweep is one W&B run (offline unless `logger=wandb_online`; docs/tracking.md):

- name: what it is (`head(lbc) + backplay k=4 seed=0`, `sft seed=0`); group: the sweep
  (`quickstart:2026-12-07/23-22-11`); job type: `sft` / `head` / `joint` / `t2t` / `eval` /
  `lm_eval` / `report`; tags: the experiment, the backbone, the benchmark;
- config: results.json's identity fields (remask, k, model, artifact, method, ...), the seed,
  the config signature, the Hydra choices (`choice.remask`), and the whole resolved job config
  flattened to dotted keys (`sampler.tokens_per_step`, `head_train.max_steps`), so that W&B
  filters and groups on any of them;
- id: fixed by what the run computes (`sft-<stage signature>`, `eval-<job signature>`): a stage
  resumed after a kill continues its run, and an eval decoded again updates its run.

Training runs are Lightning's WandbLogger (`tasks/fit.py`); an eval run is the same logger's
run, given the eval's summary and a capped table of its samples (`log_eval`). A result or stage
taken from the cache trains and decodes nothing, and logs no run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from backplay_exp.tasks.identity import EVAL_TASKS, job_identity, method_label
from backplay_exp.tasks.results import job_signature

log = logging.getLogger(__name__)

# config parts that are not the job's: where it writes, how it logs, Hydra's own
NOT_LOGGED = ("hydra", "paths", "logger")
# what a samples-table row shows of a samples.jsonl record
SAMPLE_COLUMNS = ("id", "prompt", "completion", "answer", "correct", "nfe", "remasks", "edits")


def wandb_node(cfg: DictConfig) -> DictConfig | None:
    """The config's W&B logger node (`logger.wandb`), None where W&B is off."""
    node = (cfg.get("logger") or {}).get("wandb")
    return node or None


def hydra_context() -> dict[str, Any]:
    """The experiment, the sweep (or run) directory, the job number and the choices of this job.

    From Hydra's runtime config where there is one (a CLI job), else empty.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    multirun = str(hc.mode) == "RunMode.MULTIRUN"
    choices = OmegaConf.to_container(hc.runtime.choices)
    return {
        "experiment": choices.get("experiment"),
        "sweep": str(hc.sweep.dir if multirun else hc.run.dir),
        "job_num": hc.job.get("num") if multirun else None,
        "choices": choices,
    }


def sweep_group(experiment: str | None, sweep_dir: str | Path) -> str:
    """The W&B group of a sweep's runs: `<experiment>:<date>/<time>` (its directory's tail)."""
    tail = "/".join(Path(sweep_dir).parts[-2:])
    return f"{experiment or 'run'}:{tail}"


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys (lists stay values)."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat |= flatten(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}")
    return flat


def run_config(cfg: DictConfig, identity: dict[str, Any], context: dict[str, Any]) -> dict:
    """What a job's run records as its config: identity, choices and the flat resolved config."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain = {k: v for k, v in plain.items() if k not in NOT_LOGGED}
    choices = {f"choice.{k}": v for k, v in (context.get("choices") or {}).items()}
    choices = {k: v for k, v in choices.items() if not k.startswith("choice.hydra")}
    return (
        flatten(plain)
        | choices
        | identity
        | {
            "backbone.name": identity.get("backbone"),
            "experiment": context.get("experiment"),
            "sweep": context.get("sweep"),
            "job_num": context.get("job_num"),
            "config_signature": job_signature(cfg),
        }
    )


def run_meta(cfg: DictConfig, stage: tuple[str, str] | None = None) -> dict[str, Any]:
    """wandb.init's name, id, group, job type, tags and config for this job (or its stage).

    Args:
        cfg: The job config.
        stage: (kind, signature) of the stage being trained, for a training run.
    """
    context = hydra_context()
    identity = job_identity(cfg)
    job_type = stage[0] if stage else identity["task"]
    config = run_config(cfg, identity, context)
    if stage is not None:
        config |= {"stage": f"{stage[0]}/{stage[1]}", "stage_signature": stage[1]}
        name, run_id = f"{stage[0]} seed={cfg.seed}", f"{stage[0]}-{stage[1]}"
    elif identity["task"] in EVAL_TASKS:
        config["method"] = method_label(identity)
        name = f"{config['method']} k={identity['tokens_per_step']} seed={cfg.seed}"
        run_id = f"{identity['task']}-{config['config_signature']}"
    else:
        name, run_id = f"{job_type} seed={cfg.seed}", f"{job_type}-{config['config_signature']}"
    experiment = context.get("experiment")
    tags = [t for t in (experiment, identity["backbone"], identity["benchmark"]) if t]
    sweep = context.get("sweep") or cfg.paths.output_dir
    return {
        "name": name,
        "id": run_id,
        "group": sweep_group(experiment, sweep),
        "job_type": job_type,
        "tags": [str(t) for t in tags],
        "config": config,
    }


def eval_summary(results: dict[str, Any]) -> dict[str, Any]:
    """An eval run's summary: accuracy and its 95% interval, NFE, time, remasks, edits."""
    from scipy.stats import binomtest

    n = int(results["n"])
    correct = round(results["accuracy"] * n)
    low, high = binomtest(correct, n).proportion_ci(0.95, method="wilson") if n else (0, 0)
    wall = results.get("wall_s")
    return {
        "accuracy": results["accuracy"],
        "accuracy_ci95_low": float(low),
        "accuracy_ci95_high": float(high),
        "nfe_mean": results["nfe_mean"],
        "wall_s": wall,
        "s_per_problem": wall / n if wall is not None and n else None,
        "tokens_per_s": results.get("tokens_per_s"),
        "remasks_mean": results.get("remasks_mean"),
        "edits_mean": results.get("edits_mean"),
        "edit_intensity": results.get("edit_intensity"),
        "problems": n,
    }


def wandb_logger(node: DictConfig, save_dir: str | Path, meta: dict[str, Any]) -> Any:
    """The logger a `logger.wandb` node builds, with this run's name, id, group and config.

    The run's fields are passed to the built class as they are (not through OmegaConf, which
    would turn the config's dotted keys into nested nodes).
    """
    from hydra.utils import instantiate

    return instantiate(node, _partial_=True)(save_dir=str(save_dir), **meta)


def log_eval(
    cfg: DictConfig,
    out: Path,
    results: dict[str, Any],
    samples: Sequence[dict[str, Any]],
    meta: dict[str, Any] | None,
    pages: Sequence[Path] = (),
) -> None:
    """The eval job's W&B run: its summary, a capped table of its samples and its trace pages.

    Does nothing where W&B is off (`meta` None: `run_meta` is taken in the job's own process,
    where Hydra's runtime is, before a multi-process eval spawns its ranks). Runs on rank 0,
    after results.json is written.
    """
    node = wandb_node(cfg)
    if node is None or meta is None:
        return
    import wandb

    logger = wandb_logger(node, out, meta)
    run = logger.experiment
    rows = sorted(samples, key=lambda s: str(s["id"]))[: logger.samples_table]
    table = wandb.Table(
        columns=list(SAMPLE_COLUMNS), data=[[s.get(c) for c in SAMPLE_COLUMNS] for s in rows]
    )
    payload: dict[str, Any] = {**eval_summary(results), "samples": table}
    for page in pages:
        payload[f"traces/{page.stem}"] = wandb.Html(page.read_text())
    run.log(payload)
    run.finish()


__all__ = ["log_eval", "run_meta", "sweep_group", "wandb_logger", "wandb_node"]
