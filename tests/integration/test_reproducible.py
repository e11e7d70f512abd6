"""`reproducible=true`: the same weights whatever instruction set the kernels were built for.

Other CPUs are emulated on this one: `ATEN_CPU_CAPABILITY` picks PyTorch's kernels (default,
AVX2, AVX-512) and `MKL_ENABLE_INSTRUCTIONS` MKL's code path. A short SFT + head run (the
quickstart's stages, test-sized) under each must end in bit-identical weights with the mode on,
and does not without it (which is why the mode exists).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]
SHORT = [*TINY, "task=head", "head_train.max_steps=4", "head_train.val_check_interval=2",
         "head_train.checkpoint_every=2", "sft.max_steps=6", "hydra.run.dir=."]  # fmt: skip


def cpus() -> list[dict[str, str]]:
    """The instruction sets this CPU can emulate: (PyTorch kernels, MKL path) pairs."""
    native = torch.backends.cpu.get_cpu_capability()  # the best this CPU runs
    if native not in ("AVX2", "AVX512"):
        pytest.skip(f"needs an x86-64 CPU with AVX2 (this one runs {native} kernels)")
    sets = [("default", "SSE4_2"), ("avx2", "AVX2")]
    if native == "AVX512":
        sets.append(("avx512", "AVX512"))
    return [{"ATEN_CPU_CAPABILITY": a, "MKL_ENABLE_INSTRUCTIONS": m} for a, m in sets]


def trained_weights(tmp_path: Path, cpu: dict[str, str], reproducible: bool) -> str:
    """A digest of the SFT backbone's and the head's weights after a short run under `cpu`."""
    run = tmp_path / f"{cpu['ATEN_CPU_CAPABILITY']}_{reproducible}"
    run.mkdir()
    env = {**os.environ, **cpu, "OMP_NUM_THREADS": "2"}
    overrides = [*SHORT, f"paths.cache_dir={run / 'cache'}", f"reproducible={reproducible}"]
    subprocess.run(
        [sys.executable, "-m", "backplay_exp", *overrides],
        cwd=run, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    digest = hashlib.sha256()
    for path in sorted((run / "cache").rglob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_weights_are_identical_across_instruction_sets_only_in_reproducible_mode(tmp_path):
    emulated = cpus()
    on = {trained_weights(tmp_path, cpu, True) for cpu in emulated}
    off = {trained_weights(tmp_path, cpu, False) for cpu in emulated}
    assert len(on) == 1  # one set of weights on every emulated CPU
    assert len(off) > 1  # the kernels' instruction set shows in the weights without the mode
