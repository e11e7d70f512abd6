"""The run directory contract: `results.json` and `samples.jsonl` (ARCHITECTURE.md "Contracts").

`results.json` is written once per job; `samples.jsonl` gets one line per problem, appended as
it goes, so that an interrupted eval resumes. Each sample carries the job's config signature:
a resumed job only keeps the records of the same config.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from backplay_exp.tasks.stages import signature

log = logging.getLogger(__name__)

RESULTS_FILE, SAMPLES_FILE = "results.json", "samples.jsonl"
# config parts that do not change what a job computes
NOT_IN_JOB_SIGNATURE = ("paths", "logger", "hydra", "fail_fast", "eval_devices")
# task flags that say how to run a job, not what it computes (the traces an eval keeps beside
# its results are a view of the same decodes)
NOT_IN_TASK_SIGNATURE = ("devices", "reuse", "trace_samples")
# a switch -> the keys that change nothing computed while it is off (and so are left out then:
# a job of the default config keeps the signature it had before the switch existed)
WHILE_OFF = {"reproducible": ("reproducible", "reproducible_threads")}


def output_dir(cfg: DictConfig) -> Path:
    """The job's run directory (Hydra's output dir, or `paths.output_dir` in tests)."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def job_signature(cfg: DictConfig) -> str:
    """Hash of everything in the job config that can change its results.

    How many processes share the decoding (`task.devices`, `eval_devices`) and whether a
    cached identical job may be copied (`task.reuse`) change nothing computed: a job resumed
    with another world size keeps its records. Nor does a switch that is off (`WHILE_OFF`).
    """
    plain = OmegaConf.to_container(cfg, resolve=True)
    off = {k for switch, keys in WHILE_OFF.items() if not plain.get(switch) for k in keys}
    plain = {k: v for k, v in plain.items() if k not in (*NOT_IN_JOB_SIGNATURE, *off)}
    if isinstance(plain.get("task"), dict):
        plain["task"] = {k: v for k, v in plain["task"].items() if k not in NOT_IN_TASK_SIGNATURE}
    return signature(plain)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_results(cfg: DictConfig, payload: dict[str, Any]) -> Path:
    """Write `results.json` with the seed, the config signature and `payload`."""
    data = {"seed": cfg.seed, "config_signature": job_signature(cfg), "status": "ok"}
    data |= {k: _finite(v) for k, v in payload.items()}
    path = output_dir(cfg) / RESULTS_FILE
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_samples(path: Path, config_signature: str | None = None) -> dict[str, dict[str, Any]]:
    """Records already in a `samples.jsonl`, by problem id.

    A torn last line (the job was killed while writing it) is dropped, and so are records of
    another config when `config_signature` is given (a run dir reused with new settings).
    """
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    stale = 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if config_signature is not None and record.get("config_signature") != config_signature:
            stale += 1
            continue
        done[record["id"]] = record
    if stale:
        log.warning("%s: dropped %d samples of another config", path, stale)
    return done


def append_samples(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records and flush them to disk before returning."""
    with path.open("a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()
