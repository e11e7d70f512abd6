"""Shared fixtures: compose the real config tree with test-sized overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize
from omegaconf import DictConfig, open_dict

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one xdist worker per core: one thread each (and in the CLI subprocesses
    # they start), or the workers' thread pools oversubscribe the cores
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"

# small enough for seconds on a CPU, large enough to exercise every code path
TINY = [
    "logger=csv",
    "sft.max_steps=12",
    "sft.val_check_interval=6",
    "sft.checkpoint_every=6",
    "data.n_train=512",
    "data.n_val=64",
    "data.batch_size=16",
    "benchmark.n_problems=12",
    "backbone.d_model=32",
    "backbone.n_layers=2",
    "backbone.n_heads=2",
    "+trainer.enable_progress_bar=false",
]


# what the tests against the SLURM cluster measured (`record_property`: the jobs'
# requests, the preempted runs' steps), printed at the end of the session; here,
# where the controller of pytest-xdist loads it too
FACTS: list[tuple[str, str, object]] = []
MEASURED = ("tests/cluster/",)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the facts a test recorded (on the controller too, under xdist)."""
    if report.when == "call" and report.passed and report.nodeid.startswith(MEASURED):
        FACTS.extend((report.nodeid.split("::")[-1], k, v) for k, v in report.user_properties)


def pytest_terminal_summary(terminalreporter: object) -> None:
    """Print what the tests recorded: SLURM requests, job names, the preempted runs' steps."""
    if FACTS:
        terminalreporter.section("measured on the SLURM cluster (tests/cluster)")
        for test, key, value in FACTS:
            terminalreporter.write_line(f"{test}: {key} = {value}")


@pytest.fixture
def compose_cfg(tmp_path: Path):
    """`compose_cfg(*overrides, tiny=True)` -> the composed root config, writing under tmp_path."""

    def _compose(*overrides: str, tiny: bool = True, hydra_cfg: bool = False) -> DictConfig:
        with initialize(version_base="1.3", config_path="../conf"):
            cfg = compose(
                "config",
                overrides=[*(TINY if tiny else []), *overrides],
                return_hydra_config=hydra_cfg,
            )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "out")
            cfg.paths.cache_dir = str(tmp_path / "cache")
        return cfg

    return _compose
