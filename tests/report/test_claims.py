"""The claims table: per-seed paired differences, their intervals and the verdicts."""

import json

import pytest

from backplay_exp.report.claims import claims, write_claims


def job(seed, **fields):
    base = {"task": "eval", "status": "ok", "seed": seed, "n": 256, "model": "sft",
            "artifact": None, "remask": "confidence", "tokens_per_step": 1}  # fmt: skip
    return base | fields


def write(root, name, jobs):
    for i, j in enumerate(jobs):
        (root / name / str(i)).mkdir(parents=True)
        (root / name / str(i) / "results.json").write_text(json.dumps(j))


@pytest.fixture
def toy_paper(tmp_path):
    tokens = []
    for seed, bp4 in enumerate([0.70, 0.65, 0.72]):
        tokens += [
            job(seed, tokens_per_step=1, accuracy=1.0, nfe_mean=32.0),
            job(seed, tokens_per_step=2, accuracy=0.35, nfe_mean=16.0),
            job(seed, tokens_per_step=4, accuracy=0.20, nfe_mean=8.0),
            job(seed, model="head", artifact="lbc", remask="backplay", tokens_per_step=4,
                accuracy=bp4, nfe_mean=13.5),
        ]  # fmt: skip
    write(tmp_path, "tokens", tokens)
    artifacts = []
    for seed, (lbc, uni) in enumerate([(0.60, 0.65), (0.55, 0.62), (0.58, 0.66)]):
        artifacts += [
            job(seed, model="head", artifact=a, remask="backplay", tokens_per_step=4,
                accuracy=acc, nfe_mean=13.0)
            for a, acc in (("lbc", lbc), ("uniform", uni))
        ]  # fmt: skip
    write(tmp_path, "artifacts", artifacts)
    write(tmp_path, "heads", [
        {"task": "head", "status": "ok", "seed": s, "val/head_auroc": a, "val/head_ap": 0.9}
        for s, a in enumerate([0.99, 0.98, 0.995])
    ])  # fmt: skip
    return tmp_path


def test_claims_by_hand(toy_paper):
    found = {c.name + c.quantity: c for c in claims(toy_paper)}
    c1 = found["C1acc(k=1) - acc(k=4), points"]
    assert c1.values == [(0, 80.0), (1, 80.0), (2, 80.0)] and c1.verdict() == "holds"
    # bar = (100 + 20) / 2 = 60 points: margins 10, 5, 12; NFE 13.5 < confidence's 16 at k=2
    c2 = next(c for c in found.values() if c.name == "C2")
    assert [round(v, 6) for _, v in c2.values] == [10.0, 5.0, 12.0]
    assert c2.verdict() == "holds"
    # uniform heads are better on every seed: the claim does not hold
    c4 = next(c for c in found.values() if c.name == "C4")
    assert [round(v, 6) for _, v in c4.values] == [-5.0, -7.0, -8.0]
    assert c4.verdict() == "does not hold"
    c6 = next(c for c in found.values() if c.name == "C6")
    assert c6.verdict() == "holds"
    c3 = next(c for c in found.values() if c.name == "C3")
    assert c3.values == [] and "not run" in c3.row()


def test_c2_fails_when_a_seed_falls_far_below_its_bar(toy_paper):
    path = toy_paper / "tokens" / "7" / "results.json"  # seed 1's BackPlay k=4 job
    record = json.loads(path.read_text())
    assert record["remask"] == "backplay" and record["seed"] == 1
    path.write_text(json.dumps(record | {"accuracy": 0.45}))  # 15 points below its bar
    c2 = next(c for c in claims(toy_paper) if c.name == "C2")
    assert c2.verdict() != "holds" and "worst seed -15.0" in c2.row()


def test_combined_report(toy_paper):
    (toy_paper / "tokens" / "report.md").write_text("TOKENS TABLE\n")
    text = write_claims(toy_paper)
    assert text.count("\n| C") == 8
    report = (toy_paper / "report.md").read_text()
    assert "## The claims" in report and "TOKENS TABLE" in report
