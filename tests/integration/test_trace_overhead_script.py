"""scripts/trace_overhead.py: the decoder before and after the recorder decode alike, timed."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from tests.scripts import SCRIPTS, script_module


@pytest.mark.skipif(
    shutil.which("git") is None
    or subprocess.run(["git", "rev-parse", "HEAD"], cwd=SCRIPTS, capture_output=True).returncode,
    reason="needs the git history (the decoder before is read from a revision)",
)
def test_trace_overhead_times_both_decoders_on_the_same_decode():
    args = argparse.Namespace(overrides=["sampler.tokens_per_step=4"], repeats=2, traced=True)
    with script_module("trace_overhead") as script:
        try:
            before = script.decoder_at("HEAD")
            record = script.measure(args, before, "backplay_toy", 2)  # asserts the same tokens
        finally:
            sys.modules.pop("decoder_before", None)
    assert record["policy"] == "backplay_toy" and record["batch"] == 2
    assert {"before_s", "after_s", "after_traced_s"} <= record.keys()
    assert record["after_over_before"] > 0
