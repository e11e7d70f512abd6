"""Fixtures of the lm-eval harness tests: run files, lm-eval requests, a replaying model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

# lm-eval's own ~14k task names take ~4 s to index; the repo's tasks are all these tests need
FAST = ["task=lm_eval", "lm_eval.include_defaults=false"]
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def stage_cache(tmp_path_factory) -> Path:
    """One stage cache for the tests that decode with trained stages: each stage trains once."""
    return tmp_path_factory.mktemp("stages")


def read_run(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def generation(context: str, doc_id: int = 0, **gen_kwargs) -> Instance:
    """A `generate_until` request as lm-eval builds it."""
    return Instance(
        request_type="generate_until",
        doc={},
        arguments=(context, gen_kwargs),
        idx=0,
        metadata=("t", doc_id, 1),
    )


def choice(context: str, continuation: str, doc_id: int = 0, idx: int = 0) -> Instance:
    """A `loglikelihood` request as lm-eval builds it (one per choice, `idx` = the choice)."""
    return Instance(
        request_type="loglikelihood",
        doc={},
        arguments=(context, continuation),
        idx=idx,
        metadata=("t", doc_id, 1),
    )
