"""The claims table: per-seed paired differences, their intervals and the verdicts."""

import json

import pytest
from omegaconf import OmegaConf

from backplay_exp.report.claims import claims, sweep_claims, write_claims, write_verdict
from backplay_exp.report.claimset import CLAIMS_DIR, load_claims


def job(seed, **fields):
    base = {"task": "eval", "status": "ok", "seed": seed, "n": 256, "model": "sft",
            "artifact": None, "remask": "confidence", "tokens_per_step": 1}  # fmt: skip
    return base | fields


def write(root, name, jobs):
    for i, j in enumerate(jobs):
        (root / name / str(i)).mkdir(parents=True, exist_ok=True)
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


def one_seed_sweep(root, bp4=0.953, random4=None):
    jobs = [
        job(0, tokens_per_step=1, accuracy=1.0, nfe_mean=32.0),
        job(0, tokens_per_step=2, accuracy=0.996, nfe_mean=16.0),
        job(0, tokens_per_step=4, accuracy=0.668, nfe_mean=8.0),
        job(0, model="head", artifact="lbc", remask="backplay", tokens_per_step=4,
            accuracy=bp4, nfe_mean=9.9),
    ]  # fmt: skip
    if random4 is not None:
        jobs.append(job(0, remask="random", tokens_per_step=4, accuracy=random4, nfe_mean=10.2))
    write(root, ".", jobs)
    return jobs


def test_a_one_seed_sweep_prints_its_verdict_lines(tmp_path):
    tokens = load_claims("tokens_sweep")
    one_seed_sweep(tmp_path)
    text = write_verdict(tmp_path, tokens)
    assert (tmp_path / "claims.md").read_text() == text
    head, c1, c2 = text.splitlines()
    assert "one training seed" in head
    # 100.0 - 66.8 = 33.2; the bar (100.0 + 66.8) / 2 = 83.4, BackPlay 95.3 -> +11.9
    assert c1 == "C1 holds: confidence decoding drops 33.2 points from k=1 to k=4 (100.0% -> 66.8%)"
    assert c2 == (
        "C2 holds: BackPlay at k=4 95.3% vs the half-recovery bar 83.4% (+11.9 points), "
        "at 9.9 NFE vs confidence's 16.0 at k=2"
    )


def test_one_seed_verdicts_fail_below_the_bar_and_c5_needs_a_random_arm(tmp_path):
    tokens = load_claims("tokens_sweep")
    one_seed_sweep(tmp_path / "a", bp4=0.80, random4=0.85)
    text = write_verdict(tmp_path / "a", tokens)
    lines = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert lines["C2"].startswith("C2 fails: BackPlay at k=4 80.0% vs the half-recovery bar 83.4%")
    assert lines["C5"] == (
        "C5 fails: BackPlay at k=4 80.0% vs random remasking's 85.0% (-5.0 points), "
        "at 9.9 vs 10.2 NFE"
    )
    one_seed_sweep(tmp_path / "b")
    assert "C5" not in write_verdict(tmp_path / "b", tokens)
    # the table of several seeds keeps its interval language at one seed
    c2 = next(c for c in claims(tmp_path / "a", tokens) if c.name == "C2")
    assert c2.verdict() == "not resolved at this n" and c2.run_verdict() == "fails"


def test_a_sweep_without_the_arms_has_no_verdict(tmp_path):
    write(tmp_path, ".", [job(0, model="joint", tokens_per_step=2, accuracy=0.5, nfe_mean=16.0)])
    assert write_verdict(tmp_path, load_claims("tokens_sweep")) == ""
    assert not (tmp_path / "claims.md").exists()
    # k = 1 and 4 only: C1 is judged, C2 is not (its NFE side needs confidence at k=2)
    ks14 = [j for j in one_seed_sweep(tmp_path / "k14") if j["tokens_per_step"] != 2]
    write(tmp_path / "k14b", ".", ks14)
    lines = write_verdict(tmp_path / "k14b", load_claims("tokens_sweep")).splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["C1"]


@pytest.mark.parametrize("name", sorted(p.stem for p in CLAIMS_DIR.glob("*.yaml")))
def test_every_claims_file_loads(name):
    loaded = load_claims(name)
    assert loaded.specs and all(spec.plus for spec in loaded.specs)


def test_the_quickstart_report_names_its_claims(compose_cfg):
    from hydra.utils import instantiate

    cfg = compose_cfg("+experiment=quickstart", hydra_cfg=True)
    callback = instantiate(cfg.hydra.callbacks.report)
    assert [s.name for s in callback.claims.specs] == ["C1", "C2", "C5"]


def test_a_rebuilt_report_finds_the_claims_its_sweep_named(tmp_path):
    one_seed_sweep(tmp_path)
    assert sweep_claims(tmp_path) is None  # no multirun.yaml: no claims named
    named = OmegaConf.load(CLAIMS_DIR / "tokens_sweep.yaml")
    saved = {"hydra": {"callbacks": {"report": {"claims": named}}}}
    OmegaConf.save(saved, tmp_path / "multirun.yaml")  # what a sweep's Hydra writes
    assert write_verdict(tmp_path, sweep_claims(tmp_path)).splitlines()[1].startswith("C1 holds")
