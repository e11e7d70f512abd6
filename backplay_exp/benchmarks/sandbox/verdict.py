"""The sandbox's judgement of one run: passed / failed / timed_out / crashed, with a reason.

A zero exit code is not a pass (`sys.exit(0)` before the asserts exits 0): the runner appends
a per-run random nonce print after the tests, and only a run whose last stdout line is that
nonce passes. The reason names what happened in words a person can act on, and ends up in
`samples.jsonl` (`detail`).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

PASSED, FAILED, TIMED_OUT, CRASHED = "passed", "failed", "timed_out", "crashed"
STATUSES = (PASSED, FAILED, TIMED_OUT, CRASHED)
MAX_REASON = 300


@dataclass(frozen=True)
class RunResult:
    """What one sandboxed program did.

    Attributes:
        status: One of `passed`, `failed`, `timed_out`, `crashed`.
        reason: Why, in one line (empty when passed).
        returncode: The program's exit code (negative: killed by that signal); None if it never ran.
        wall_s: Wall-clock seconds the program ran.
        stdout: The tail of its standard output.
        stderr: The tail of its standard error.
    """

    status: str
    reason: str
    returncode: int | None
    wall_s: float
    stdout: str = ""
    stderr: str = ""

    @property
    def passed(self) -> bool:
        """Whether the program ran to its end with every test passing."""
        return self.status == PASSED

    @property
    def detail(self) -> str:
        """`status: reason`, the form kept in samples.jsonl."""
        return f"{self.status}: {self.reason}" if self.reason else self.status


@dataclass(frozen=True)
class Limits:
    """The limits a run was under, to name the one that was hit."""

    timeout_s: float
    cpu_s: int
    memory_mb: int
    fsize_mb: int


def signal_name(number: int) -> str:
    """`SIGKILL` for 9, etc."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def error_line(stderr: str) -> str:
    """The last line of a traceback, with the failing source line for a bare AssertionError."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip(" ^~\t")]
    if not lines:
        return ""
    last = lines[-1]
    if last == "AssertionError" and len(lines) >= 2:
        last = f"AssertionError at `{lines[-2]}`"
    return last[:MAX_REASON]


def ended_with_nonce(stdout: str, nonce: str) -> bool:
    """Whether the last non-empty stdout line is exactly `nonce`."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return bool(lines) and lines[-1].strip() == nonce


def classify(
    returncode: int,
    timed_out: bool,
    stdout: str,
    stdout_bytes: int,
    stderr: str,
    nonce: str,
    limits: Limits,
) -> tuple[str, str]:
    """`(status, reason)` of a finished run.

    Args:
        returncode: Exit code; negative = killed by that signal.
        timed_out: Whether the wall-clock limit killed it.
        stdout: Tail of standard output.
        stdout_bytes: Full size of standard output (to detect a flood cut by RLIMIT_FSIZE).
        stderr: Tail of standard error.
        nonce: The marker printed after the last test.
        limits: What the run was allowed.
    """
    fsize = limits.fsize_mb << 20
    if timed_out:
        return TIMED_OUT, f"wall-clock limit of {limits.timeout_s:g}s exceeded"
    if returncode == -signal.SIGXCPU:
        return TIMED_OUT, f"CPU time limit of {limits.cpu_s}s exceeded"
    if returncode == 0 and ended_with_nonce(stdout, nonce):
        return PASSED, ""
    error = error_line(stderr)
    if "MemoryError" in error or "Cannot allocate memory" in stderr:
        return CRASHED, f"out of memory (limit {limits.memory_mb} MiB): {error}"[:MAX_REASON]
    if stdout_bytes >= fsize or "File too large" in stderr or returncode == -signal.SIGXFSZ:
        return CRASHED, f"output or file size limit of {limits.fsize_mb} MiB exceeded"
    if returncode < 0:
        return CRASHED, f"killed by {signal_name(-returncode)}"
    if returncode == 0:
        return FAILED, "exited with code 0 before the tests finished (no completion marker)"
    return FAILED, error or f"exit code {returncode}"
