"""The paper's claims measured on sweeps: per-seed differences, 95% intervals, verdicts.

What each claim compares comes from a config (`conf/claims/<name>.yaml`, `ClaimSet`): which
sweep, which arms (fields of results.json), which metric and k, which bar, the display strings.
A claim's per-seed quantity is the mean of its `plus` terms minus the mean of its `minus` terms,
paired within each training seed; its verdict:

- **holds**: the 95% t-interval lies on the claimed side (above 0), and every side condition is
  met (e.g. C2: fewer NFE than confidence at k=2 on every seed, no seed far below its bar);
- **does not hold**: the interval lies on the other side (or a side condition fails);
- **not resolved at this n**: the interval straddles 0.

A sweep of one training seed (the quickstart) has no interval: its verdict lines say whether each
claim **holds** or **fails** on that run. `python -m backplay_exp.report.claims <toy_paper_dir>`
writes the embedded paper's claims table (`conf/claims/toy_paper.yaml`) from the sweeps
`launch/toy_paper.sh` writes; a sweep's report (`report/callback.py`) prints the verdict lines
of the claims its experiment names (`conf/claims/tokens_sweep.yaml` for the quickstart).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from backplay_exp.report.aggregate import mean_ci
from backplay_exp.report.claimset import ClaimSet, ClaimSpec, Side, Term, load_claims
from backplay_exp.report.jobs import collect

Job = dict[str, Any]
Values = list[tuple[int, float]]


@dataclass
class Measure:
    """Per seed: a quantity and the means of its `plus` and `minus` terms."""

    values: Values
    plus: Values
    minus: Values

    def means(self) -> dict[str, float]:
        """`value`, `plus`, `minus`: means over seeds (NaN without seeds)."""
        parts = {"value": self.values, "plus": self.plus, "minus": self.minus}
        return {k: mean_ci([v for _, v in s])[0] if s else float("nan") for k, s in parts.items()}


def pick(jobs: Sequence[Job], arm: Mapping[str, Any]) -> dict[int, Job]:
    """The finished jobs whose fields equal `arm`, by training seed."""
    found: dict[int, Job] = {}
    for job in jobs:
        if job.get("status") == "ok" and all(job.get(k) == v for k, v in arm.items()):
            found[int(job["seed"])] = job
    return found


def measure_terms(plus: Sequence[Term], minus: Sequence[Term], sweep: str, jobs: Any) -> Measure:
    """Per seed that has every term: mean(plus) - mean(minus) (`jobs(sweep)`: its results)."""

    def arm(term: Term) -> dict[int, float]:
        picked = pick(jobs(term.sweep or sweep), term.arm)
        return {s: term.scale * (j[term.metric] - term.baseline) for s, j in picked.items()}

    arms = [arm(t) for t in (*plus, *minus)]
    seeds = sorted(set.intersection(*(set(a) for a in arms))) if arms else []
    out = Measure([], [], [])
    for seed in seeds:
        up = sum(a[seed] for a in arms[: len(plus)]) / len(plus)
        down = sum(a[seed] for a in arms[len(plus) :]) / len(minus) if minus else 0.0
        out.values.append((seed, up - down))
        out.plus.append((seed, up))
        out.minus.append((seed, down))
    return out


@dataclass
class Claim:
    """One claim measured: its per-seed values, its sides, and the verdict."""

    spec: ClaimSpec
    own: Measure
    sides: dict[str, Measure]

    @classmethod
    def measured(cls, spec: ClaimSpec, jobs: Any) -> Claim:
        """`spec` measured on the sweeps `jobs(name)` returns."""
        own = measure_terms(spec.plus, spec.minus, spec.sweep, jobs)
        sides = {
            s.name: measure_terms(s.plus, s.minus, spec.sweep, jobs) if s.plus else own
            for s in spec.sides
        }
        return cls(spec, own, sides)

    @property
    def name(self) -> str:
        """`C1`, ..."""
        return self.spec.name

    @property
    def quantity(self) -> str:
        """What the per-seed values are."""
        return self.spec.quantity

    @property
    def values(self) -> Values:
        """(seed, value) in seed order."""
        return self.own.values

    @property
    def complete(self) -> bool:
        """Whether the sweep has every arm the claim and its sides compare."""
        sides = (self.sides[s.name].values for s in self.spec.sides if s.plus)
        return bool(self.values) and all(sides)

    @property
    def extra_ok(self) -> bool:
        """Whether every side condition is met."""
        ok = True
        for side in self.spec.sides:
            values = [v for _, v in self.sides[side.name].values]
            if side.every_seed_above is not None:
                ok &= bool(values) and all(v > side.every_seed_above for v in values)
            if side.worst_at_least is not None:
                ok &= min(values, default=0.0) >= side.worst_at_least
        return ok

    @property
    def note(self) -> str:
        """The sides' texts, `; `-joined."""
        return "; ".join(self.side_text(side) for side in self.spec.sides)

    def side_text(self, side: Side) -> str:
        """One side's text with its values filled in."""
        values = self.sides[side.name].values
        above = side.every_seed_above if side.every_seed_above is not None else 0.0
        return side.text.format(
            per_seed=", ".join(f"{s}: {v:{side.format}}" for s, v in values),
            values=", ".join(f"{v:{side.format}}" for _, v in values),
            n=len(values),
            n_above=sum(v > above for _, v in values),
            worst=min((v for _, v in values), default=0.0),
        )

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

    def run_verdict(self) -> str:
        """The verdict of a sweep's own line: on one seed its value decides (holds / fails)."""
        if len(self.values) != 1:
            return self.verdict()
        return "holds" if self.values[0][1] > 0 and self.extra_ok else "fails"

    def row(self) -> str:
        """A markdown row of the claims table."""
        spec = self.spec
        if not self.values:
            return f"| {spec.name} | {spec.statement} | {spec.quantity} | no runs | | not run |"
        mean, half = mean_ci([v for _, v in self.values])
        seeds = ", ".join(f"{s}: {v:+.1f}" for s, v in self.values)
        note = f" ({self.note})" if self.note else ""
        return (
            f"| {spec.name} | {spec.statement} | {spec.quantity} | {seeds} | "
            f"{mean:+.1f} ± {half:.1f} (n={len(self.values)}) | {self.verdict()}{note} |"
        )

    def line(self) -> str:
        """The one-line verdict: `C1 holds: <line> (n seeds: mean ± 95% CI)`."""
        fields: dict[str, Any] = dict(self.own.means())
        fields |= {name: _Means(**m.means()) for name, m in self.sides.items()}
        text = (self.spec.line or f"{self.spec.quantity} = {{value:+.1f}}").format(**fields)
        n = len(self.values)
        if n > 1:
            mean, half = mean_ci([v for _, v in self.values])
            text += f" ({n} seeds, mean ± 95% CI: {mean:+.1f} ± {half:.1f})"
        return f"{self.spec.name} {self.run_verdict()}: {text}"


@dataclass
class _Means:
    value: float
    plus: float
    minus: float


def measured(root: str | Path, claim_set: ClaimSet) -> list[Claim]:
    """Every claim of `claim_set` measured on the sweeps under `root` (a missing sweep: no runs)."""
    sweeps: dict[str, list[Job]] = {}

    def jobs(name: str) -> list[Job]:
        if name not in sweeps:
            where = Path(root) / name
            sweeps[name] = collect(where) if where.exists() else []
        return sweeps[name]

    return [Claim.measured(spec, jobs) for spec in claim_set.specs]


def claims(root: str | Path, claim_set: ClaimSet | None = None) -> list[Claim]:
    """The claims of `claim_set` (default: the embedded paper's) on the sweeps under `root`."""
    return measured(root, claim_set or load_claims("toy_paper"))


def write_verdict(sweep_dir: str | Path, claim_set: ClaimSet) -> str:
    """Write the verdict lines of a sweep into its `claims.md`; return them ("" if none).

    A claim is judged only where the sweep has every arm it and its sides compare.
    """
    found = [c for c in measured(sweep_dir, claim_set) if c.complete]
    if not found:
        return ""
    seeds = max(len(c.values) for c in found)
    how = (
        "one training seed: each holds or fails on this run"
        if seeds == 1
        else f"up to {seeds} training seeds: the 95% interval over seeds decides"
    )
    text = "\n".join([f"{claim_set.title} ({how}):", *(c.line() for c in found)]) + "\n"
    (Path(sweep_dir) / "claims.md").write_text(text)
    return text


def sweep_claims(sweep_dir: str | Path) -> ClaimSet | None:
    """The claims a sweep's report names (`hydra.callbacks.report.claims` of its multirun.yaml)."""
    from hydra.utils import instantiate

    saved = Path(sweep_dir) / "multirun.yaml"
    if not saved.exists():
        return None
    node = OmegaConf.select(OmegaConf.load(saved), "hydra.callbacks.report.claims")
    return instantiate(node) if node is not None else None


def write_claims(root: str | Path, claim_set: ClaimSet | None = None) -> str:
    """Write `claims.md` (the claims table) and `report.md` (it, then every table) into `root`."""
    root = Path(root)
    claim_set = claim_set or load_claims("toy_paper")
    lines = [
        "| claim | statement | per-seed quantity | per seed | mean ± 95% CI | verdict |",
        "|---|---|---|---|---|---|",
        *(c.row() for c in measured(root, claim_set)),
    ]
    text = "\n".join(lines) + "\n"
    (root / "claims.md").write_text(text)
    sections = [f"# {claim_set.title}", "", "## The claims", "", text]
    for name, title in claim_set.sections.items():
        if (root / name / "report.md").exists():
            sections += [f"## {title}", "", (root / name / "report.md").read_text()]
    (root / "report.md").write_text("\n".join(sections))
    return text


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m backplay_exp.report.claims <toy_paper_dir> [claims_name]")
    chosen = load_claims(sys.argv[2] if len(sys.argv) == 3 else "toy_paper")
    sys.stdout.write(write_claims(sys.argv[1], chosen))
