"""The run directory contract: `results.json` (one per job) and `samples.jsonl` (one line per
problem, appended as it goes so that an interrupted eval resumes). ARCHITECTURE.md "Contracts".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from backplay_exp.tasks.stages import signature

RESULTS_FILE, SAMPLES_FILE = "results.json", "samples.jsonl"
# config parts that do not change what a job computes
NOT_IN_JOB_SIGNATURE = ("paths", "logger", "hydra", "fail_fast")


def output_dir(cfg: DictConfig) -> Path:
    """The job's run directory (Hydra's output dir, or `paths.output_dir` in tests)."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def job_signature(cfg: DictConfig) -> str:
    """Hash of everything in the job config that can change its results."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    return signature({k: v for k, v in plain.items() if k not in NOT_IN_JOB_SIGNATURE})


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_results(cfg: DictConfig, payload: dict[str, Any]) -> Path:
    """Write `results.json` with the seed, the config signature and `payload`."""
    data = {"seed": cfg.seed, "config_signature": job_signature(cfg), "status": "ok"}
    data |= {k: _finite(v) for k, v in payload.items()}
    path = output_dir(cfg) / RESULTS_FILE
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_samples(path: Path) -> dict[str, dict[str, Any]]:
    """Records already in a `samples.jsonl`, by problem id (a torn last line is dropped)."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line being written when the job was killed
        done[record["id"]] = record
    return done


def append_samples(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records and flush them to disk before returning."""
    with path.open("a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()
