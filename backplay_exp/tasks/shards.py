"""An eval job's problems split across ranks, and the one `samples.jsonl` they add up to.

Batch `i` of the job's fixed batches belongs to rank `i % world`; each batch is decoded with a
generator seeded by `i` (`utils/seeding.py`), so which rank decodes it changes nothing. A rank
appends its records to its own file (`samples.rank<r>-of-<w>.jsonl`; a one-process job writes
`samples.jsonl` directly, as it always has). On resume every rank reads the records of every
samples file of the job (of the same config signature), so a rank killed mid-run redoes only its
unfinished batches, whatever the world size of the rerun. When all ranks are done, rank 0 writes
`samples.jsonl` in problem order and removes the rank files: the merged file is the one a
one-process run writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backplay_exp.benchmarks.base import Problem
from backplay_exp.tasks.results import SAMPLES_FILE, append_samples, read_samples


def shard_path(out: Path, rank: int, world: int) -> Path:
    """Where rank `rank` of `world` appends its records."""
    return out / (SAMPLES_FILE if world == 1 else f"samples.rank{rank}-of-{world}.jsonl")


def rank_files(out: Path) -> list[Path]:
    """Every per-rank samples file of the job directory."""
    return sorted(out.glob("samples.rank*-of-*.jsonl"))


def read_done(out: Path, config_signature: str) -> dict[str, dict[str, Any]]:
    """Records of every samples file of the job (merged and per rank), by problem id."""
    done: dict[str, dict[str, Any]] = {}
    for path in [out / SAMPLES_FILE, *rank_files(out)]:
        done |= read_samples(path, config_signature)
    return done


def my_batches(n_batches: int, rank: int, world: int) -> list[int]:
    """Indices of the batches rank `rank` of `world` decodes."""
    return list(range(rank, n_batches, world))


def merge(out: Path, problems: Sequence[Problem], config_signature: str) -> list[dict[str, Any]]:
    """Write `samples.jsonl` in problem order from every samples file; drop the rank files.

    Raises:
        RuntimeError: naming problems no file has (a rank did not finish).
    """
    done = read_done(out, config_signature)
    missing = [p.id for p in problems if p.id not in done]
    if missing:
        raise RuntimeError(
            f"{len(missing)} problems have no record yet (e.g. {missing[:3]}): a rank did not "
            "finish; run the same command again to decode only what is missing"
        )
    records = [done[p.id] for p in problems]
    tmp = out / (SAMPLES_FILE + ".tmp")
    tmp.write_text("")
    append_samples(tmp, records)
    os.replace(tmp, out / SAMPLES_FILE)  # atomic: a reader never sees half a file
    for path in rank_files(out):
        path.unlink()
    return records
