"""scripts/cache_accuracy.py: per-seed paired differences and the time-to-accuracy check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts import script_module


def job(
    root: Path,
    name: str,
    policy: str,
    k: int,
    seed: int,
    cache: str,
    correct: list[bool],
    wall: float,
) -> None:
    """One finished eval job's run files: 4 problems, `correct` per problem."""
    out = root / name
    out.mkdir(parents=True)
    samples = [{"id": f"p{i}", "correct": c} for i, c in enumerate(correct)]
    (out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    results = {
        "task": "eval",
        "status": "ok",
        "remask": policy,
        "tokens_per_step": k,
        "seed": seed,
        "cache": cache,
        "accuracy": sum(correct) / len(correct),
        "n": len(correct),
        "nfe_mean": 8.0,
        "wall_s": wall,
    }
    (out / "results.json").write_text(json.dumps(results))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Two seeds of BackPlay none/lazy and confidence dual; seed 1's lazy loses one problem."""
    yes = [True] * 4
    job(tmp_path, "a", "backplay", 4, 0, "none", yes, 8.0)
    job(tmp_path, "b", "backplay", 4, 0, "lazy", yes, 3.0)
    job(tmp_path, "c", "backplay", 4, 1, "none", yes, 8.0)
    job(tmp_path, "d", "backplay", 4, 1, "lazy", [True, False, True, True], 3.0)
    job(tmp_path, "e", "confidence", 2, 0, "dual", [True, True, False, False], 4.0)
    job(tmp_path, "f", "confidence", 2, 1, "dual", yes, 4.0)
    return tmp_path


def test_rows_per_seed_with_the_lazy_cache(sweep: Path) -> None:
    """Seeds are not merged, and a cache outside none/prefix/dual gets a column."""
    with script_module("cache_accuracy") as script:
        lines = script.table(script.load(sweep))
    header = [cell.strip(" |") for cell in lines[0].split(" | ")]
    assert [cell.split(":")[0] for cell in header[3:]] == ["none", "dual", "lazy"]
    rows = {tuple(line.split(" | ")[:3]): line for line in lines[2:]}
    assert "(+0.0 ± 0.0)" in rows[("| backplay", "4", "0")]
    # seed 1: one of 4 problems lost: -25 points; differences (0, -1, 0, 0): variance 0.25, se 0.25
    assert "75.0 ± 21.7 (-25.0 ± 25.0)" in rows[("| backplay", "4", "1")]


def test_time_to_accuracy_per_seed(sweep: Path) -> None:
    """Holds only where the cell is at least as accurate and faster."""
    with script_module("cache_accuracy") as script:
        lines = script.time_to_accuracy(script.load(sweep), "backplay:4:lazy", "confidence:2:dual")
        assert lines[1] == "  seed 0: 100.0% in 3.00 s vs 50.0% in 4.00 s: holds"
        assert lines[2] == "  seed 1: 75.0% in 3.00 s vs 100.0% in 4.00 s: does not hold"
        with pytest.raises(ValueError, match="policy:k:cache"):
            script.parse_cell("backplay-4-lazy")
