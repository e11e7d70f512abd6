"""The sweep report: the table says what the results.json files say, and the plot is drawn."""

import csv
import json
import re

import pytest
from PIL import Image

from backplay_exp.report.jobs import collect, method_label
from backplay_exp.report.table import write_report


def result(model, remask, k, acc, nfe, status="ok", artifact=None):
    return {
        "task": "eval", "benchmark": "toy", "backbone": "tiny", "model": model,
        "artifact": artifact, "remask": remask, "tokens_per_step": k, "n": 8,
        "accuracy": acc, "nfe_mean": nfe, "remasks_mean": 0.0, "wall_s": 1.0,
        "tokens_per_s": 10.0, "seed": 0, "config_signature": f"{model}{remask}{k}",
        "status": status,
    }  # fmt: skip


@pytest.fixture
def sweep(tmp_path):
    jobs = [
        result("sft", "confidence", 1, 1.0, 32.0),
        result("sft", "confidence", 4, 0.25, 8.0),
        result("head", "backplay", 1, 0.875, 33.5, artifact="lbc"),
        result("head", "backplay", 4, 0.625, 12.25, artifact="lbc"),
        result("joint", "backplay", 4, 0.0, 0.0, status="failed", artifact="lbc"),
        {"task": "head", "status": "ok", "stage": "head/abc"},  # training jobs are not rows
    ]
    for i, job in enumerate(jobs):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.json").write_text(json.dumps(job))
    return tmp_path


def parse_table(md):
    rows = [line.strip("|").split("|") for line in md.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0]]
    return {r[0].strip(): dict(zip(header[1:], (c.strip() for c in r[1:]), strict=True))
            for r in rows[1:]}  # fmt: skip


def test_report_cells_match_the_results_files(sweep):
    table = parse_table(write_report(sweep))
    assert table.keys() == {"SFT + confidence", "head(lbc) + backplay", "joint(lbc) + backplay"}
    for r in collect(sweep):
        if r.get("task") != "eval":
            continue
        cell = table[method_label(r)][f"k={r['tokens_per_step']}"]
        if r["status"] != "ok":
            assert cell == "failed"
            continue
        acc, nfe = map(float, re.fullmatch(r"([\d.]+) / ([\d.]+)", cell).groups())
        assert acc == pytest.approx(100 * r["accuracy"], abs=0.051)  # one decimal printed
        assert nfe == pytest.approx(r["nfe_mean"], abs=0.051)  # one decimal printed
    assert table["joint(lbc) + backplay"]["k=1"] == ""  # not run: empty, not invented
    assert (sweep / "report.md").read_text().startswith("Accuracy (%) / mean NFE on toy")


def test_report_csv_has_one_row_per_job(sweep):
    write_report(sweep)
    with (sweep / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert {r["method"] for r in rows if r["status"] == "failed"} == {"joint(lbc) + backplay"}


def test_pareto_plot_is_a_picture(sweep):
    write_report(sweep)
    with Image.open(sweep / "pareto.png") as img:
        assert img.format == "PNG" and img.width >= 600 and img.height >= 400
        assert sum(1 for n in img.convert("L").histogram() if n) > 20  # not a blank canvas


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no results\.json"):
        write_report(tmp_path)


def test_edit_table_shows_intensity_and_fixed_broke_per_arm(tmp_path):
    jobs = [
        result("t2t", "t2t_edit(S)", 2, 0.5, 6.0, artifact="draft")
        | {"edits_mean": 1.5, "edit_intensity": 0.05, "edits_fixed_mean": 1.0,
           "edits_broke_mean": 0.25},
        result("t2t", "t2t_edit(S)", 2, 0.25, 7.0, artifact="random_vocab")
        | {"edits_mean": 3.0, "edit_intensity": 0.1, "edits_fixed_mean": 1.0,
           "edits_broke_mean": 1.5},
    ]  # fmt: skip
    for i, job in enumerate(jobs):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.json").write_text(json.dumps(job))
    md = write_report(tmp_path)
    accuracy, edits = md.split("T2T edit intensity")
    assert parse_table(accuracy)["t2t(draft) + t2t_edit(S)"]["k=2"] == "50.0 / 6.0"
    table = parse_table(edits.split("\n", 2)[2])
    assert table["t2t(draft) + t2t_edit(S)"]["k=2"] == "0.050 (1.00 / 0.25)"
    assert table["t2t(random_vocab) + t2t_edit(S)"]["k=2"] == "0.100 (1.00 / 1.50)"
    with (tmp_path / "report.csv").open() as f:
        assert {r["edit_intensity"] for r in csv.DictReader(f)} == {"0.05", "0.1"}


def test_no_edit_table_without_edits(sweep):
    assert "edit intensity" not in write_report(sweep)


@pytest.fixture
def seeds_sweep(tmp_path):
    root = tmp_path / "seeds"
    jobs = []
    for seed, (acc, nfe) in enumerate([(0.5, 10.0), (0.6, 12.0), (0.7, 14.0)]):
        jobs.append(result("head", "backplay", 4, acc, nfe, artifact="lbc") | {"seed": seed})
        jobs.append(result("sft", "confidence", 4, 0.25, 8.0) | {"seed": seed})
    jobs.append(
        result("head", "backplay", 4, 0.0, 0.0, status="failed", artifact="lbc") | {"seed": 3}
    )
    for i, job in enumerate(jobs):
        (root / str(i)).mkdir(parents=True)
        (root / str(i) / "results.json").write_text(json.dumps(job))
    return root


def test_seeds_are_averaged_with_a_95_percent_interval(seeds_sweep):
    table = write_report(seeds_sweep)
    # accuracy 50/60/70: mean 60, sd 10, t(0.975, 2) = 4.3027 -> 10 * 4.3027 / sqrt(3) = 24.84;
    # NFE 10/12/14: mean 12, sd 2 -> 4.97; the failed fourth seed is counted apart
    assert "| head(lbc) + backplay | 60.0 ± 24.8 / 12.0 ± 5.0 (n=3, 1 failed) |" in table
    assert "| SFT + confidence | 25.0 ± 0.0 / 8.0 ± 0.0 (n=3) |" in table
    assert "mean ± 95% confidence interval over training seeds" in table
    with (seeds_sweep / "report_summary.csv").open() as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    head = rows["head(lbc) + backplay"]
    assert (head["n_seeds"], head["failed"], head["seeds"]) == ("3", "1", "0 1 2")
    assert float(head["accuracy_mean"]) == pytest.approx(0.6)
    assert float(head["accuracy_ci95"]) == pytest.approx(4.302653 * 0.1 / 3**0.5, rel=1e-6)
    with (seeds_sweep / "report.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 7  # per-seed rows stay


def test_plot_points_carry_the_intervals(seeds_sweep):
    from backplay_exp.report.plot import pareto_points

    head = pareto_points(collect(seeds_sweep))["head(lbc) + backplay"][0]
    assert (head.accuracy, head.nfe, head.k) == pytest.approx((60.0, 12.0, 4))
    assert head.accuracy_err == pytest.approx(24.84, abs=0.01)
    assert head.nfe_err == pytest.approx(4.968, abs=0.001)
    one_seed = [r for r in collect(seeds_sweep) if r["seed"] == 0]
    (single,) = pareto_points(one_seed)["head(lbc) + backplay"]
    assert (single.accuracy, single.accuracy_err, single.nfe_err) == (50.0, 0.0, 0.0)  # no bars


def test_a_swept_setting_is_a_row_of_its_own_not_a_seed(tmp_path):
    # remask.threshold swept at one seed, and seeds 0/1 at one threshold: the thresholds are
    # rows (never averaged together as if seeds), the seeds are one cell
    runs = [(0.98, 0, 0.8, 13.0), (0.99, 0, 0.7, 11.0), (0.99, 1, 0.5, 9.0)]
    for i, (tau, seed, acc, nfe) in enumerate(runs):
        job = tmp_path / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / "results.json").write_text(
            json.dumps(result("sft", "random", 4, acc, nfe) | {"seed": seed})
        )
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- +experiment=quickstart\n- remask=random_toy\n- sampler.tokens_per_step=4\n"
            f"- seed={seed}\n- remask.threshold={tau}\n"
        )
    table = write_report(tmp_path)
    assert "| SFT + random (remask.threshold=0.98) | 80.0 ± 0.0 / 13.0 ± 0.0 (n=1) |" in table
    # 70 and 50: mean 60, sd 14.14, t(0.975, 1) = 12.706 -> 127.06; NFE 11 and 9 -> 12.7
    assert "| SFT + random (remask.threshold=0.99) | 60.0 ± 127.1 / 10.0 ± 12.7 (n=2) |" in table


def test_a_sweep_of_training_jobs_reports_their_validation_metrics(tmp_path):
    for seed, auroc in enumerate([0.99, 0.98, 0.97]):
        (tmp_path / str(seed)).mkdir()
        job = {"task": "head", "status": "ok", "stage": f"head/{seed}", "seed": seed,
               "val/head_auroc": auroc}  # fmt: skip
        (tmp_path / str(seed) / "results.json").write_text(json.dumps(job))
    table = write_report(tmp_path)
    assert "| head/1 | 1 | 0.9800 |" in table
    # 0.99/0.98/0.97: mean 0.98, sd 0.01 -> 4.3027 * 0.01 / sqrt(3) = 0.0248
    assert "| mean ± 95% CI | n=3 | 0.9800 ± 0.0248 |" in table
