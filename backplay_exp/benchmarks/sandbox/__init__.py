"""Sandboxed execution of model-written programs (MBPP, HumanEval): see `runner.py`."""

from backplay_exp.benchmarks.sandbox.runner import Sandbox
from backplay_exp.benchmarks.sandbox.verdict import (
    CRASHED,
    FAILED,
    PASSED,
    STATUSES,
    TIMED_OUT,
    RunResult,
)

__all__ = ["CRASHED", "FAILED", "PASSED", "STATUSES", "TIMED_OUT", "RunResult", "Sandbox"]
