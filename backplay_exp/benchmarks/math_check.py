"""Is a MATH answer right? math-verify in worker processes with a hard timeout, plus string match.

Primary check (EVALUATION.md): `verify(parse("$" + gold + "$"), parse(prediction))`, gold first
(it is not symmetric). sympy can hang or eat memory on adversarial LaTeX (`10^{10^{10}}`), and
math-verify's own timeout uses `signal.alarm` (main thread only, and it disarms pytest-timeout),
so each check runs in a worker process (`python -m backplay_exp.benchmarks.math_check`) under an
address-space limit, killed and restarted when it overruns its timeout.
Secondary check: Hendrycks et al.'s normalised string equality (`strip_string`).
"""

from __future__ import annotations

import json
import logging
import queue
import resource
import select
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

log = logging.getLogger(__name__)

READY = "ready"
IPC_SLACK_S = 1.0  # a check's hard kill comes this long after math-verify's own timeout


# --- Hendrycks et al. (2021) normalisation ------------------------------------------------------


def _fix_fracs(s: str) -> str:
    r"""`\frac12` -> `\frac{1}{2}`, `\frac1{2}` -> `\frac{1}{2}`."""
    head, *rest = s.split("\\frac")
    out = head
    for sub in rest:
        out += "\\frac"
        if sub.startswith("{") or len(sub) < 2:
            out += sub
        elif sub[1] == "{":
            out += "{" + sub[0] + "}" + sub[1:]
        else:
            out += "{" + sub[0] + "}{" + sub[1] + "}" + sub[2:]
    return out


def _fix_a_slash_b(s: str) -> str:
    r"""`3/4` -> `\frac{3}{4}` for plain integers."""
    a, sep, b = s.partition("/")
    if sep and a.isdigit() and b.isdigit() and s == f"{int(a)}/{int(b)}":
        return "\\frac{" + a + "}{" + b + "}"
    return s


def _fix_sqrt(s: str) -> str:
    r"""`\sqrt3` -> `\sqrt{3}`."""
    head, *rest = s.split("\\sqrt")
    return head + "".join(
        "\\sqrt" + (sub if sub.startswith("{") or not sub else "{" + sub[0] + "}" + sub[1:])
        for sub in rest
    )


def strip_string(s: str) -> str:
    """Hendrycks et al.'s answer normalisation (MATH `is_equiv`)."""
    for old, new in (("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"),
                     ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""),
                     ("\\$", "")):  # fmt: skip
        s = s.replace(old, new)
    if "\\text{ " in s:  # units: "5 \\text{ cm}" -> "5"
        s = s.split("\\text{ ")[0]
    s = s.replace("\\%", "").replace("%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    lhs, eq, rhs = s.partition("=")
    if eq and "=" not in rhs and len(lhs) <= 2:  # "k = 5" -> "5"
        s = rhs
    s = _fix_fracs(_fix_sqrt(s).replace(" ", ""))
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def string_equal(gold: str, prediction: str) -> bool:
    """Normalised string equality of two answers."""
    return strip_string(gold) == strip_string(prediction)


# --- math-verify in worker processes -------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """Outcome of one math-verify check: `equal`, or why there is no answer (`error`)."""

    equal: bool
    error: str = ""


def worker_command(memory_mb: int, timeout_s: float) -> list[str]:
    """The command line of a math-verify worker process."""
    return [sys.executable, "-m", __name__, str(memory_mb), str(timeout_s)]


class _Worker:
    """One math-verify process, spoken to in JSON lines; restarted after a timeout or crash."""

    def __init__(self, memory_mb: int, timeout_s: float, startup_s: float) -> None:
        self.memory_mb, self.timeout_s, self.startup_s = memory_mb, timeout_s, startup_s
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        """Start the process and wait for it to have imported math-verify."""
        proc = subprocess.Popen(
            worker_command(self.memory_mb, self.timeout_s),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], self.startup_s)
        if not ready or proc.stdout.readline().strip() != READY:
            proc.kill()
            raise RuntimeError(
                f"math-verify worker did not start within {self.startup_s:g}s "
                f"(is math-verify installed? pip install 'math-verify[antlr4_9_3]')"
            )
        return proc

    def check(self, gold: str, prediction: str) -> Check:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"gold": gold, "prediction": prediction}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.close()
            return Check(False, "math-verify worker crashed")
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout_s + IPC_SLACK_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            why = "crashed" if ready else f"timed out after {self.timeout_s:g}s"
            return Check(False, f"math-verify {why}")
        reply = json.loads(line)
        return Check(bool(reply["equal"]), reply.get("error", ""))

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class MathVerifier:
    """math-verify checks in `workers` processes, each check under a hard `timeout_s`.

    Args:
        workers: Worker processes (checks run in parallel).
        timeout_s: Seconds per check (math-verify's own timeout; the worker is killed one
            second later if it has not answered).
        memory_mb: Address-space limit of each worker.
        startup_s: Seconds a worker may take to start (it imports sympy).
    """

    def __init__(self, workers: int, timeout_s: float, memory_mb: int, startup_s: float) -> None:
        self.n_workers = workers
        workers_list = [_Worker(memory_mb, timeout_s, startup_s) for _ in range(workers)]
        self._workers: queue.Queue[_Worker] = queue.Queue()
        for worker in workers_list:
            self._workers.put(worker)
        weakref.finalize(self, _close_all, workers_list)

    def check(self, gold: str, prediction: str) -> Check:
        """Whether `prediction` equals `gold` according to math-verify."""
        worker = self._workers.get()
        try:
            return worker.check(gold, prediction)
        finally:
            self._workers.put(worker)

    def check_many(self, pairs: Sequence[tuple[str, str]]) -> list[Check]:
        """`check` over `(gold, prediction)` pairs, in parallel; results in input order."""
        with ThreadPoolExecutor(max_workers=self.n_workers) as pool:
            return list(pool.map(lambda pair: self.check(*pair), pairs))


def _close_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.close()


def serve(memory_mb: int, timeout_s: float) -> None:
    """Worker loop: read `{"gold", "prediction"}` lines, write `{"equal", "error"}` lines."""
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from math_verify import parse, verify

    print(READY, flush=True)
    seconds = max(1, int(timeout_s))  # math-verify's own (alarm) timeout, below the hard kill
    for line in sys.stdin:
        request = json.loads(line)
        start = time.monotonic()
        try:
            gold = parse("$" + request["gold"] + "$", parsing_timeout=seconds)
            prediction = parse(request["prediction"], parsing_timeout=seconds)
            equal = bool(prediction) and bool(verify(gold, prediction, timeout_seconds=seconds))
            error = "" if prediction else "math-verify parsed no answer"
        except Exception as err:  # one bad answer must not take the worker down
            equal, error = False, f"math-verify error: {type(err).__name__}"
        if not equal and not error and time.monotonic() - start >= seconds:
            error = f"math-verify timed out after {seconds}s"  # it returns False on its timeout
        sys.stdout.write(json.dumps({"equal": equal, "error": error}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # math-verify logs every timeout
    serve(int(sys.argv[1]), float(sys.argv[2]))
