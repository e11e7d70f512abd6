"""What a key/value cache costs in accuracy: cached vs uncached decoding of the same problems.

    python -m backplay_exp +experiment=quickstart benchmark.n_problems=1024
        sampler/cache=none,prefix,dual hydra.sweep.dir=multirun/cache_accuracy
    python scripts/cache_accuracy.py multirun/cache_accuracy

Reads the sweep's `results.json` / `samples.jsonl` and prints, per policy and k, each cache's
accuracy ± its standard error, the paired difference to the uncached run on the same problems
± the standard error of that difference, mean NFE and decoding wall time per problem.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path


def load(sweep: Path) -> dict[tuple[str, int, str], tuple[dict, dict[str, bool]]]:
    """(policy, k, cache) -> (results, {problem id: correct})."""
    runs = {}
    for path in sorted(sweep.rglob("results.json")):
        r = json.loads(path.read_text())
        if r.get("task", "eval") != "eval" or r.get("status") != "ok":
            continue
        lines = (path.parent / "samples.jsonl").read_text().splitlines()
        correct = {s["id"]: bool(s["correct"]) for s in map(json.loads, lines)}
        runs[(r["remask"], r["tokens_per_step"], r.get("cache", "none"))] = (r, correct)
    return runs


def paired(base: dict[str, bool], other: dict[str, bool]) -> tuple[float, float]:
    """Mean and standard error of `other - base` over the shared problems (in points)."""
    ids = sorted(base.keys() & other.keys())
    diffs = [float(other[i]) - float(base[i]) for i in ids]
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1)
    return 100 * mean, 100 * math.sqrt(var / len(diffs))


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    args = parser.parse_args()
    runs = load(args.sweep)
    caches = sorted({c for _, _, c in runs}, key=("none", "prefix", "dual").index)
    print(
        "| policy | k | "
        + " | ".join(f"{c}: acc ± se (Δ vs none ± se) / NFE / s per problem" for c in caches)
        + " |"
    )
    print("|---|---|" + "---|" * len(caches))
    grouped: dict[tuple[str, int], dict[str, tuple[dict, dict]]] = defaultdict(dict)
    for (policy, k, cache), run in runs.items():
        grouped[(policy, k)][cache] = run
    for (policy, k), by_cache in sorted(grouped.items()):
        cells = []
        base = by_cache.get("none")
        for cache in caches:
            if cache not in by_cache:
                cells.append("")
                continue
            r, correct = by_cache[cache]
            acc = r["accuracy"]
            se = 100 * math.sqrt(acc * (1 - acc) / r["n"])
            cell = f"{100 * acc:.1f} ± {se:.1f}"
            if base is not None and cache != "none":
                mean, dse = paired(base[1], correct)
                cell += f" ({mean:+.1f} ± {dse:.1f})"
            cell += f" / {r['nfe_mean']:.1f} / {r['wall_s'] / r['n']:.4f}"
            cells.append(cell)
        print(f"| {policy} | {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
