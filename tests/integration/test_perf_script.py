"""scripts/perf.py, the benchmark behind the head-only vs joint cost claim, runs and reports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a subprocess with its own imports

SCRIPT = Path(__file__).parents[2] / "scripts" / "perf.py"


def test_perf_train_half_reports_both_steps(tmp_path):
    out = tmp_path / "perf.json"
    cmd = [sys.executable, str(SCRIPT), "--only", "train", "--repeats", "1", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    record = json.loads(out.read_text())
    assert record["head_only_step_s"] > 0 and record["joint_step_s"] > 0
    # the head-only optimiser holds the head alone; the joint one also the backbone
    assert record["head_only_trainable_params"] < record["joint_trainable_params"]
    assert "confidence_step_s" not in record  # the decoding half was not run
