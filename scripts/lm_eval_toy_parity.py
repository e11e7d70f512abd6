"""The toy through lm-eval vs task=eval on trained stages: same problems, same decoder, same score?

    python -m backplay_exp +experiment=quickstart        # trains and caches the stages (cache/)
    python scripts/lm_eval_toy_parity.py --stages cache --out /tmp/toy_parity

For each remask policy and k (default: confidence and BackPlay at k = 2, 4) the quickstart's
config is run twice on its 256 held-out problems, decoding afresh: `task=eval` and
`task=lm_eval lm_eval.tasks=[backplay_toy]`. The stages are read from `--stages` through links
(nothing is written there). Prints accuracy and mean NFE of both, and the problems whose
completion, score or NFE differ (none expected: the same batches are decoded with the same
seeds, and lm-eval's exact_match on `####`'s answer is the toy's scorer).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"


def job(overrides: list[str], out: Path, cache: Path) -> tuple[dict, list[dict]]:
    """Run one job in-process; its results.json and samples.jsonl records."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from backplay_exp.tasks.runner import run_task

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("config", overrides=["+experiment=quickstart", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir, cfg.paths.cache_dir = str(out), str(cache)
        cfg.fail_fast = True
    run_task(cfg)
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def link_stages(stages: Path, cache: Path) -> None:
    """`cache/{sft,head}/<signature>` -> the trained stages (read only: no copy, no writes)."""
    for kind in ("sft", "head"):
        (cache / kind).mkdir(parents=True, exist_ok=True)
        for stage in (stages / kind).iterdir():
            link = cache / kind / stage.name
            if stage.is_dir() and not link.exists():
                link.symlink_to(stage.resolve(), target_is_directory=True)


def main() -> None:
    """Run both tasks per (policy, k) and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=Path, required=True, help="the stage cache (cache/)")
    parser.add_argument("--out", type=Path, required=True, help="where the runs are written")
    parser.add_argument("--remask", nargs="+", default=["confidence", "backplay_toy"])
    parser.add_argument("-k", nargs="+", type=int, default=[2, 4])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cache = args.out / "cache"
    link_stages(args.stages, cache)
    print("| remask | k | n | task=eval acc | lm-eval acc | task=eval NFE | lm-eval NFE | "
          "differing problems |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for remask in args.remask:
        for k in args.k:
            common = [f"remask={remask}", f"sampler.tokens_per_step={k}"]
            name = f"{remask}_k{k}"
            r1, s1 = job(["task=eval", "task.reuse=false", *common], args.out / name / "eval",
                         cache)  # fmt: skip
            r2, s2 = job(["task=lm_eval", "lm_eval.include_defaults=false", *common],
                         args.out / name / "lm_eval", cache)  # fmt: skip
            differ = [
                a["id"] for a, b in zip(s1, s2, strict=True)
                if (a["completion"], a["correct"], a["nfe"], a["remasks"])
                != (b["completion"], b["correct"], b["nfe"], b["remasks"])
            ]  # fmt: skip
            print(f"| {remask} | {k} | {r1['n']} | {100 * r1['accuracy']:.2f} | "
                  f"{100 * r2['accuracy']:.2f} | {r1['nfe_mean']:.2f} | {r2['nfe_mean']:.2f} | "
                  f"{len(differ)} {differ[:5]} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
