"""What a key/value cache costs in accuracy: cached vs uncached decoding of the same problems.

    python -m backplay_exp +experiment=toy_tokens_sweep remask=backplay_toy
        sampler.tokens_per_step=2,4 seed=0,1,2 sampler/cache=none,lazy
        benchmark.n_problems=1024 benchmark.seed=4321 task.reuse=false
        hydra.sweep.dir=multirun/cache_accuracy
    python scripts/cache_accuracy.py multirun/cache_accuracy [more sweep dirs]

Reads the sweeps' `results.json` / `samples.jsonl` and prints, per policy, k and training seed,
each cache's accuracy ± its standard error, the paired difference to the uncached run of the
same seed on the same problems ± the standard error of that difference, mean NFE and decoding
wall time per problem. With `--versus` it also prints time to accuracy: per seed, whether one
cell reaches at least the accuracy of another in less decode wall time (the issue-32 check,
e.g. `--versus backplay:4:lazy confidence:2:dual`).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

KNOWN_CACHES = ("none", "prefix", "dual", "lazy")
# (policy, k, seed, cache) -> (results, {problem id: correct})
Runs = dict[tuple[str, int, int, str], tuple[dict, dict[str, bool]]]


def load(*sweeps: Path) -> Runs:
    """Every finished eval job under the sweep directories (a later one wins a duplicate)."""
    runs: Runs = {}
    for sweep in sweeps:
        for path in sorted(sweep.rglob("results.json")):
            r = json.loads(path.read_text())
            if r.get("task", "eval") != "eval" or r.get("status") != "ok":
                continue
            lines = (path.parent / "samples.jsonl").read_text().splitlines()
            correct = {s["id"]: bool(s["correct"]) for s in map(json.loads, lines)}
            key = (r["remask"], r["tokens_per_step"], r.get("seed", 0), r.get("cache", "none"))
            runs[key] = (r, correct)
    return runs


def paired(base: dict[str, bool], other: dict[str, bool]) -> tuple[float, float]:
    """Mean and standard error of `other - base` over the shared problems (in points)."""
    ids = sorted(base.keys() & other.keys())
    if not ids:
        raise ValueError("the two runs share no problem: were they run on the same benchmark?")
    diffs = [float(other[i]) - float(base[i]) for i in ids]
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1)
    return 100 * mean, 100 * math.sqrt(var / len(diffs))


def cache_order(caches: set[str]) -> list[str]:
    """The known policies in order of increasing reuse, then any other (a user's) by name."""
    return [c for c in KNOWN_CACHES if c in caches] + sorted(caches - set(KNOWN_CACHES))


def table(runs: Runs) -> list[str]:
    """Markdown lines: one row per (policy, k, seed), one column per cache."""
    caches = cache_order({c for *_, c in runs})
    lines = [
        "| policy | k | seed | "
        + " | ".join(f"{c}: acc ± se (Δ vs none ± se) / NFE / s per problem" for c in caches)
        + " |",
        "|---|---|---|" + "---|" * len(caches),
    ]
    grouped: dict[tuple[str, int, int], dict[str, tuple[dict, dict]]] = defaultdict(dict)
    for (policy, k, seed, cache), run in runs.items():
        grouped[(policy, k, seed)][cache] = run
    for (policy, k, seed), by_cache in sorted(grouped.items()):
        base = by_cache.get("none")
        cells = []
        for cache in caches:
            if cache not in by_cache:
                cells.append("")
                continue
            r, correct = by_cache[cache]
            acc = r["accuracy"]
            cell = f"{100 * acc:.1f} ± {100 * math.sqrt(acc * (1 - acc) / r['n']):.1f}"
            if base is not None and cache != "none":
                mean, se = paired(base[1], correct)
                cell += f" ({mean:+.1f} ± {se:.1f})"
            cells.append(cell + f" / {r['nfe_mean']:.1f} / {r['wall_s'] / r['n']:.4f}")
        lines.append(f"| {policy} | {k} | {seed} | " + " | ".join(cells) + " |")
    return lines


def parse_cell(text: str) -> tuple[str, int, str]:
    """`policy:k:cache` -> (policy, k, cache), or a ValueError naming the format."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        raise ValueError(f"--versus takes policy:k:cache, e.g. backplay:4:lazy, not {text!r}")
    return parts[0], int(parts[1]), parts[2]


def time_to_accuracy(runs: Runs, cell: str, rival: str) -> list[str]:
    """Per seed: does `cell` reach at least `rival`'s accuracy in less decode wall time?"""
    (p, k, c), (rp, rk, rc) = parse_cell(cell), parse_cell(rival)
    lines = [f"time to accuracy: {cell} vs {rival} (decode wall time of all problems)"]
    seeds = sorted({s for (pp, kk, s, cc) in runs if (pp, kk, cc) in ((p, k, c), (rp, rk, rc))})
    for seed in seeds:
        mine, theirs = runs.get((p, k, seed, c)), runs.get((rp, rk, seed, rc))
        if mine is None or theirs is None:
            lines.append(f"  seed {seed}: missing {cell if mine is None else rival}")
            continue
        (a, _), (b, _) = mine, theirs
        holds = a["accuracy"] >= b["accuracy"] and a["wall_s"] < b["wall_s"]
        lines.append(
            f"  seed {seed}: {100 * a['accuracy']:.1f}% in {a['wall_s']:.2f} s vs "
            f"{100 * b['accuracy']:.1f}% in {b['wall_s']:.2f} s: "
            + ("holds" if holds else "does not hold")
        )
    return lines


def main() -> None:
    """Print the table (and the time-to-accuracy check)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", type=Path, nargs="+")
    parser.add_argument("--versus", nargs=2, metavar=("CELL", "RIVAL"), default=None)
    args = parser.parse_args()
    runs = load(*args.sweeps)
    if not runs:
        raise SystemExit(f"no finished eval job under {', '.join(map(str, args.sweeps))}")
    print("\n".join(table(runs)))
    if args.versus:
        print("\n".join(time_to_accuracy(runs, *args.versus)))


if __name__ == "__main__":
    main()
