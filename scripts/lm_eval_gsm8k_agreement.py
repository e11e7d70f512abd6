"""Does lm-eval's GSM8K exact_match score fixed completions as the project's GSM8K scorer does?

    python scripts/lm_eval_gsm8k_agreement.py ../shared/data/gsm8k --problems 300

Completions are built from the test split's reference solutions (no model): each problem gets
the variants of `VARIANTS` (the reference itself, a wrong final number, formatting changes of
the right one, a text that goes on into a new "Question:", ...). They are scored twice:

- by lm-eval: the repo's `backplay_gsm8k` task (lm-eval's gsm8k definition over the local
  files), run by `lm_eval.simple_evaluate` on a `ReplayLM` that returns the completion cut at
  the task's `until` strings, both filters (strict-match, flexible-extract);
- by the project: `benchmarks/gsm8k.py` (cut at its stop strings, the number after `####`,
  else the last number, compared numerically).

Every disagreement is printed with the reason `explain` finds for it; a disagreement with no
reason is a bug in one of the two scorers (tests/harness/test_gsm8k.py fails on it).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONF = Path(__file__).resolve().parents[1] / "conf"
FILTERS = ("strict-match", "flexible-extract")
TASK = "backplay_gsm8k"
HASH = "#### "

# completion variants: (reference solution, its gold number) -> completion
VARIANTS: dict[str, Callable[[str, int], str]] = {
    "reference": lambda sol, n: sol,
    "wrong_final": lambda sol, n: sol[: sol.rindex(HASH)] + f"{HASH}{n + 1}",
    "thousands_commas": lambda sol, n: sol[: sol.rindex(HASH)] + f"{HASH}{n:,}",
    "trailing_zeros": lambda sol, n: sol[: sol.rindex(HASH)] + f"{HASH}{n}.00",
    "currency": lambda sol, n: sol[: sol.rindex(HASH)] + f"{HASH}${n}",
    "no_hash": lambda sol, n: sol[: sol.rindex(HASH)] + f"The answer is {n}.",
    "continues": lambda sol, n: sol + "\n\nQuestion: What is 2 + 2?\nAnswer: #### 4",
    "corrected_after_hash": lambda sol, n: (
        sol[: sol.rindex(HASH)] + f"{HASH}{n + 1}\nNo, I made a mistake: it is {n}"
    ),
}
REASONS = {
    "numeric": "the same number written differently (e.g. 18.00 vs 18): the project compares "
    "numbers, lm-eval's exact_match compares strings (EVALUATION.md)",
    "currency_after_hash": "'#### $N': lm-eval's strict regex wants a digit right after "
    "'#### ', the project's number pattern allows a '$'",
    "no_hash": "no '####': strict-match finds nothing, the project falls back to the last number",
    "last_vs_hash": "the number after '####' is not the last one: flexible-extract takes the "
    "last number, the project the one after '####' (strict first)",
}


def completions(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """Every variant's completion of each problem."""
    from backplay_exp.benchmarks.gsm8k import gold_answer

    golds = [int(gold_answer(r["answer"], i)) for i, r in enumerate(rows)]
    return {
        name: [make(r["answer"], n) for r, n in zip(rows, golds, strict=True)]
        for name, make in VARIANTS.items()
    }


def lm_eval_verdicts(data: Path, texts: list[str]) -> dict[str, list[tuple[bool, str]]]:
    """lm-eval's (correct, extracted) per filter for each completion, doc i = texts[i]."""
    from backplay_exp.harness.replay import ReplayLM
    from backplay_exp.harness.taskset import run_tasks

    lm = ReplayLM(lambda inst: texts[inst.doc_id])
    results = run_tasks(
        lm, [TASK], data_dirs=[str(data.parent)], include_defaults=False,
        num_fewshot=0, limit=len(texts), bootstrap_iters=0,
    )  # fmt: skip
    out: dict[str, list[tuple[bool, str]]] = {f: [None] * len(texts) for f in FILTERS}
    for sample in results["samples"][TASK]:
        out[sample["filter"]][sample["doc_id"]] = (
            sample["exact_match"] == 1.0,
            str(sample["filtered_resps"][0]),
        )
    return out


def project_verdicts(data: Path, texts: list[str]) -> list[tuple[bool, str | None, str]]:
    """The project's (correct, extracted, how) for each completion (problem i = texts[i])."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    overrides = ["benchmark=gsm8k", f"benchmark.path={data / 'test.jsonl'}",
                 f"benchmark.limit={len(texts)}"]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        bench = instantiate(compose("config", overrides=overrides).benchmark)
    problems = bench.problems()
    verdicts = bench.score(problems, [bench.cut(t) for t in texts])
    return [(v.correct, v.extracted, v.detail) for v in verdicts]


def explain(text: str, filt: str, lm: tuple[bool, str], project: tuple, gold: str) -> str | None:
    """The reason (a key of REASONS) lm-eval's `filt` and the project disagree, if one fits."""
    from backplay_exp.benchmarks.gsm8k import FINAL_RE, NUMBER_RE, to_number

    lm_right, lm_got = lm
    right, got, how = project
    if lm_right == right:
        return None
    if right and to_number(lm_got) is not None and to_number(lm_got) == to_number(gold):
        return "numeric"
    final = FINAL_RE.search(text)
    if filt == "strict-match" and final is None and how == "flexible":
        return "no_hash"
    if filt == "strict-match" and final and final.group(1).lstrip().startswith("$"):
        return "currency_after_hash"
    if filt == "flexible-extract" and how == "strict":
        numbers = NUMBER_RE.findall(text)
        if numbers and to_number(numbers[-1]) != to_number(got or ""):
            return "last_vs_hash"
    return None


def compare(data: Path, n_problems: int) -> list[dict[str, Any]]:
    """One row per (problem, variant): both scorers' verdicts and any disagreement's reason."""
    from backplay_exp.benchmarks.gsm8k import gold_answer

    lines = (data / "test.jsonl").read_text().splitlines()[:n_problems]
    rows = [json.loads(line) for line in lines]
    golds = [gold_answer(r["answer"], i) for i, r in enumerate(rows)]
    out = []
    for variant, texts in completions(rows).items():
        ours, theirs = project_verdicts(data, texts), lm_eval_verdicts(data, texts)
        for i, text in enumerate(texts):
            row = {"problem": i, "variant": variant, "gold": golds[i], "project": ours[i][0],
                   "project_extracted": ours[i][1], "why": {}}  # fmt: skip
            for filt in FILTERS:
                row[filt], row[f"{filt}_extracted"] = theirs[filt][i]
                row["why"][filt] = explain(text, filt, theirs[filt][i], ours[i], golds[i])
            out.append(row)
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per filter: agreements, disagreements, and the disagreements counted by reason."""
    counts: dict[str, dict[str, Any]] = {}
    for filt in FILTERS:
        disagree = [r for r in rows if r[filt] != r["project"]]
        counts[filt] = {
            "n": len(rows),
            "agree": len(rows) - len(disagree),
            "disagree": len(disagree),
            "why": Counter(r["why"][filt] for r in disagree if r["why"][filt]),
            "unexplained": sum(r["why"][filt] is None for r in disagree),
        }
    return counts


def main() -> None:
    """Print the agreement table and every disagreement with its reason."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="directory with GSM8K's test.jsonl")
    parser.add_argument("--problems", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    rows = compare(args.data, args.problems)
    counts = summary(rows)
    by_variant: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in rows:
        for filt in FILTERS:
            by_variant[(r["variant"], filt)][(r["project"], r[filt])] += 1
    print(f"{len(rows)} completions ({args.problems} problems x {len(VARIANTS)} variants)\n")
    print("| variant | filter | both right | both wrong | project only | lm-eval only |")
    print("|---|---|---|---|---|---|")
    for (variant, filt), c in by_variant.items():
        print(f"| {variant} | {filt} | {c[(True, True)]} | {c[(False, False)]} | "
              f"{c[(True, False)]} | {c[(False, True)]} |")  # fmt: skip
    for filt, c in counts.items():
        print(f"\n{filt}: {c['agree']}/{c['n']} agree, {c['disagree']} disagree "
              f"({c['unexplained']} unexplained)")  # fmt: skip
        for reason, k in c["why"].most_common():
            print(f"  {k:5d}  {reason}: {REASONS[reason]}")
    print("\nEvery disagreement (problem, variant, gold, project / lm-eval extraction, reason):")
    for r in rows:
        for filt in FILTERS:
            if r[filt] != r["project"]:
                print(f"  {r['problem']:4d} {r['variant']:22s} gold {r['gold']:>8s}  "
                      f"{filt:16s} project {r['project']!s:5s} ({r['project_extracted']}) "
                      f"lm-eval {r[filt]!s:5s} ({r[f'{filt}_extracted']})  "
                      f"{r['why'][filt] or 'UNEXPLAINED'}")  # fmt: skip


if __name__ == "__main__":
    main()
