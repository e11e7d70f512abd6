"""Fixtures of the benchmark tests: the shared real data (skip when absent) and sandboxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

from backplay_exp.benchmarks.base import Benchmark
from backplay_exp.benchmarks.sandbox import Sandbox

CONF = Path(__file__).resolve().parents[2] / "conf"

# ../shared/data relative to the project root (never copied into the repo)
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

SANDBOX_DEFAULTS = {
    "workers": 2,
    "timeout_s": 10.0,
    "cpu_s": 10,
    "memory_mb": 1024,
    "nproc": 64,
    "fsize_mb": 16,
    "nofile": 128,
    "tmpfs_mb": 64,
    "namespaces": "auto",
    "interpreter": None,
    "user_prefix": "bpsandbox",
    "max_users": 64,
}


def make_sandbox(**overrides) -> Sandbox:
    """A sandbox with the defaults of conf/benchmark/sandbox/default.yaml, 2 workers."""
    return Sandbox(**{**SANDBOX_DEFAULTS, **overrides})


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real benchmark data not available at {path}")
    return path


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """One sandbox (2 workers, production limits) shared by the tests that run real programs."""
    return make_sandbox()


def benchmark_cfg(name: str, **overrides: Any):
    """The `benchmark=<name>` node of the real config tree with `overrides` set on it."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("config", overrides=[f"benchmark={name}"]).benchmark
    with open_dict(cfg):
        for key, value in overrides.items():
            cfg[key] = value
    return cfg


def build_benchmark(name: str, sandbox: Sandbox | None = None, **overrides: Any) -> Benchmark:
    """Instantiate `benchmark=<name>` from conf/ (code benchmarks get `sandbox` if given)."""
    cfg = benchmark_cfg(name, **overrides)
    return instantiate(cfg, sandbox=sandbox) if sandbox is not None else instantiate(cfg)
