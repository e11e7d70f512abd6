"""A sweep of task=lm_eval jobs ends in the usual report: table rows per method and k, Pareto."""

from __future__ import annotations

from backplay_exp.report.table import write_report
from backplay_exp.tasks.runner import run_task
from tests.harness.conftest import FAST


def test_lm_eval_jobs_make_the_report(compose_cfg, tmp_path):
    sweep = tmp_path / "sweep"
    for job, k in enumerate((2, 4)):
        cfg = compose_cfg(
            *FAST, "sft.checkpoint=pretrained", f"sampler.tokens_per_step={k}", "lm_eval.limit=4"
        )
        cfg.paths.output_dir = str(sweep / str(job))
        run_task(cfg)
    report = write_report(sweep)
    assert "SFT + confidence" in report
    assert "k=2" in report and "k=4" in report
    assert (sweep / "report.md").exists() and (sweep / "pareto.png").exists()
