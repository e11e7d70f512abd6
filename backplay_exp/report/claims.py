"""The paper's claims on the embedded model: per-seed differences, 95% intervals, verdicts.

`python -m backplay_exp.report.claims <toy_paper_dir>` reads the sweeps `launch/toy_paper.sh`
writes (`tokens/`, `heads/`, `table1/`, `artifacts/`, `random_remask/`, `t2t/`, each a
multirun over training seeds) and writes `claims.md` beside them: for each claim, the per-seed
quantity that decides it (a paired difference between arms of the same seed), its mean ± 95%
t-interval, and a plain verdict:

- **holds**: the interval lies on the claimed side (and, for C2, every condition below is met);
- **does not hold**: the interval lies on the other side;
- **not resolved at this n**: the interval straddles the line.

C1 confidence decoding degrades with k (k=1 minus k=4 > 0). C2 BackPlay at k=4 recovers at
least half of that loss (accuracy minus the half-recovery bar > 0, no seed more than 10 points
below its own bar) with fewer NFE than confidence at k=2. C3 joint training hurts the base model
(SFT minus joint, both without remasking, k=2 > 0). C4 LBC artifacts train a better head than
uniform ones (BackPlay at k=4). C5 the head beats random remasking at matched NFE (k=4). C6 the
head detects errors (held-out AUROC > 0.5). C7 a draft-trained editor beats a random-vocabulary
one (accuracy in S-Mode and Q-Mode).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backplay_exp.report.aggregate import mean_ci
from backplay_exp.report.table import collect

Job = dict[str, Any]


def pick(jobs: Sequence[Job], **match: Any) -> dict[int, Job]:
    """The finished jobs whose fields equal `match`, by training seed."""
    found: dict[int, Job] = {}
    for job in jobs:
        if job.get("status") == "ok" and all(job.get(k) == v for k, v in match.items()):
            found[int(job["seed"])] = job
    return found


def paired(a: dict[int, Job], b: dict[int, Job], value: Callable[[Job, Job], float]) -> list:
    """`value(a[seed], b[seed])` for every seed both have, in seed order."""
    return [(seed, value(a[seed], b[seed])) for seed in sorted(a.keys() & b.keys())]


@dataclass
class Claim:
    """One claim: what decides it, per seed, and the verdict."""

    name: str
    statement: str
    quantity: str
    values: list[tuple[int, float]]
    extra_ok: bool = True
    note: str = ""

    def verdict(self) -> str:
        """Holds / does not hold / not resolved at this n (see the module docstring)."""
        if len(self.values) < 2:
            return "not resolved at this n"
        mean, half = mean_ci([v for _, v in self.values])
        if mean - half > 0 and self.extra_ok:
            return "holds"
        if mean + half < 0 or (mean - half > 0 and not self.extra_ok):
            return "does not hold"
        return "not resolved at this n"

    def row(self) -> str:
        """A markdown row."""
        if not self.values:
            return f"| {self.name} | {self.statement} | {self.quantity} | no runs | | not run |"
        mean, half = mean_ci([v for _, v in self.values])
        seeds = ", ".join(f"{s}: {v:+.1f}" for s, v in self.values)
        note = f" ({self.note})" if self.note else ""
        return (
            f"| {self.name} | {self.statement} | {self.quantity} | {seeds} | "
            f"{mean:+.1f} ± {half:.1f} (n={len(self.values)}) | {self.verdict()}{note} |"
        )


def acc(job: Job) -> float:
    """Accuracy in points."""
    return 100 * job["accuracy"]


def claims(root: Path) -> list[Claim]:
    """C1-C7 from the sweeps under `root` (a missing sweep leaves its claims without runs)."""
    sweep = {name: collect(root / name) if (root / name).exists() else [] for name in (
        "tokens", "heads", "table1", "artifacts", "random_remask", "t2t")}  # fmt: skip
    tok = sweep["tokens"]
    conf = {k: pick(tok, remask="confidence", tokens_per_step=k) for k in (1, 2, 4)}
    bp4 = pick(tok, remask="backplay", tokens_per_step=4)
    c1 = paired(conf[1], conf[4], lambda a, b: acc(a) - acc(b))
    bar = {s: (acc(conf[1][s]) + acc(conf[4][s])) / 2 for s in conf[1].keys() & conf[4].keys()}
    c2 = [(s, acc(j) - bar[s]) for s, j in sorted(bp4.items()) if s in bar]
    nfe_gap = paired(conf[2], bp4, lambda c, b: c["nfe_mean"] - b["nfe_mean"])
    fewer_nfe = bool(nfe_gap) and all(v > 0 for _, v in nfe_gap)
    worst = min((v for _, v in c2), default=0.0)
    t1 = sweep["table1"]
    sft2 = pick(t1, model="sft", remask="confidence")
    joint2 = pick(t1, model="joint", remask="confidence")
    art = sweep["artifacts"]
    lbc4, uni4 = (pick(art, artifact=a, tokens_per_step=4) for a in ("lbc", "uniform"))
    rnd = sweep["random_remask"]
    bp_r, rand_r = (pick(rnd, remask=r, tokens_per_step=4) for r in ("backplay", "random"))
    nfe_diff = paired(bp_r, rand_r, lambda b, r: b["nfe_mean"] - r["nfe_mean"])
    heads = pick(sweep["heads"], task="head")
    t2t = sweep["t2t"]
    modes = {}
    for mode in ("S", "Q"):
        draft, vocab = (pick(t2t, artifact=a, remask=f"t2t_edit({mode})") for a in (
            "draft", "random_vocab"))  # fmt: skip
        modes[mode] = paired(draft, vocab, lambda d, v: acc(d) - acc(v))
    return [
        Claim("C1", "confidence decoding degrades as k grows", "acc(k=1) - acc(k=4), points", c1),
        Claim(
            "C2",
            "BackPlay at k=4 recovers ≥ half of the loss with fewer NFE than confidence at k=2",
            "acc(BackPlay, k=4) - half-recovery bar, points",
            c2,
            extra_ok=fewer_nfe and worst >= -10,
            note=f"NFE below confidence k=2 on {sum(v > 0 for _, v in nfe_gap)}/{len(nfe_gap)} "
            f"seeds; worst seed {worst:+.1f}",
        ),
        Claim(
            "C3",
            "joint training hurts the base model",
            "acc(SFT) - acc(joint), confidence, k=2",
            paired(sft2, joint2, lambda a, b: acc(a) - acc(b)),
        ),
        Claim(
            "C4",
            "LBC artifacts train a better head than uniform ones",
            "acc(lbc head) - acc(uniform head), BackPlay k=4",
            paired(lbc4, uni4, lambda a, b: acc(a) - acc(b)),
        ),
        Claim(
            "C5",
            "the head beats random remasking at matched NFE",
            "acc(head) - acc(random), k=4",
            paired(bp_r, rand_r, lambda a, b: acc(a) - acc(b)),
            note="NFE(head) - NFE(random): " + ", ".join(f"{s}: {v:+.1f}" for s, v in nfe_diff),
        ),
        Claim(
            "C6",
            "the head detects the model's errors",
            "held-out AUROC - 0.5, points",
            [(s, 100 * (j["val/head_auroc"] - 0.5)) for s, j in sorted(heads.items())],
            note="AP: " + ", ".join(f"{j['val/head_ap']:.3f}" for _, j in sorted(heads.items())),
        ),
        Claim(
            "C7",
            "a draft-trained editor beats a random-vocabulary one (S-Mode)",
            "acc(draft) - acc(random_vocab), S-Mode",
            modes["S"],
        ),
        Claim(
            "C7",
            "… and in Q-Mode",
            "acc(draft) - acc(random_vocab), Q-Mode",
            modes["Q"],
        ),
    ]


SWEEPS = {  # directory -> the table it reproduces
    "tokens": "Tables 2-5: tokens per step (toy_tokens_sweep)",
    "table1": "Table 1: SFT vs joint vs BackPlay, k=2 (toy_table1)",
    "artifacts": "Tables 6-7: LBC vs one-step vs uniform artifacts (toy_artifacts)",
    "random_remask": "Table 8: random remasking (toy_random_remask)",
    "t2t": "T2T: draft vs random-vocabulary editors (toy_t2t)",
}


def write_claims(root: str | Path) -> str:
    """Write `claims.md` (the claims table) and `report.md` (it, then every table) into `root`."""
    root = Path(root)
    lines = [
        "| claim | statement | per-seed quantity | per seed | mean ± 95% CI | verdict |",
        "|---|---|---|---|---|---|",
        *(c.row() for c in claims(root)),
    ]
    text = "\n".join(lines) + "\n"
    (root / "claims.md").write_text(text)
    sections = ["# The embedded paper", "", "## The claims", "", text]
    for name, title in SWEEPS.items():
        if (root / name / "report.md").exists():
            sections += [f"## {title}", "", (root / name / "report.md").read_text()]
    (root / "report.md").write_text("\n".join(sections))
    return text


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m backplay_exp.report.claims <toy_paper_dir>")
    sys.stdout.write(write_claims(sys.argv[1]))
