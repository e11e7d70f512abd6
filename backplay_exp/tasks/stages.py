"""The stage cache: trained backbones and heads, named by the signature of what produced them.

A sweep's jobs all need the same SFT model (and head). Each stage lives in
`<paths.cache_dir>/<kind>/<signature>/`, where the signature hashes the resolved config that
determines the stage (backbone, data, recipe, seed, precision, and the upstream stage). A job
trains a missing stage under a file lock, so concurrent jobs wait instead of training twice; a
stage interrupted mid-training resumes from its Lightning `last.ckpt`. `done.json` marks it
finished. An explicit checkpoint path in the config bypasses the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

DONE_FILE, SPEC_FILE = "done.json", "stage.yaml"
# keys that say how to obtain or run a stage, not what it is
NOT_IN_SIGNATURE = ("checkpoint",)


def _plain(node: Any, ignore: tuple[str, ...]) -> Any:
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, dict):
        return {k: _plain(v, ignore) for k, v in node.items() if k not in ignore}
    if isinstance(node, list | tuple):
        return [_plain(v, ignore) for v in node]
    return node


def signature(*parts: Any, ignore: tuple[str, ...] = ()) -> str:
    """A short, stable hash of config nodes and plain values (order matters, key order not).

    Keys named in `NOT_IN_SIGNATURE` or `ignore` are left out at every depth.
    """
    payload = json.dumps(
        [_plain(p, NOT_IN_SIGNATURE + ignore) for p in parts], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def is_done(stage_dir: Path) -> bool:
    """Whether a stage finished (its `done.json` exists)."""
    return (stage_dir / DONE_FILE).exists()


def ensure_stage(
    stage_dir: Path,
    train: Callable[[Path], dict[str, Any]],
    spec: dict[str, Any] | None = None,
    lock_timeout_s: float = -1,
) -> Path:
    """Return `stage_dir`, training it first (under a lock) if it is not done.

    Args:
        stage_dir: Where the stage lives.
        train: Trains into the directory (resuming what is there) and returns its metrics.
        spec: The config parts the stage's signature hashes, written to `stage.yaml` so that
            a cached stage says what produced it.
        lock_timeout_s: How long to wait for another job's lock (-1 = forever).
    """
    if is_done(stage_dir):
        return stage_dir
    stage_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(stage_dir) + ".lock", timeout=lock_timeout_s):
        if is_done(stage_dir):  # another job trained it while we waited
            log.info("stage %s was trained by another job", stage_dir)
            return stage_dir
        stage_dir.mkdir(parents=True, exist_ok=True)
        if spec is not None:
            OmegaConf.save(OmegaConf.create(_plain(spec, NOT_IN_SIGNATURE)), stage_dir / SPEC_FILE)
        log.info("training stage %s", stage_dir)
        metrics = train(stage_dir)
        (stage_dir / DONE_FILE).write_text(json.dumps(metrics, indent=2, default=str))
    return stage_dir
