"""Supervises one sandboxed program: limits, uid drop, wall-clock kill, and a clean-up sweep.

Run as a script by `runner.py` (`python -I -S supervisor.py`, the job spec `marshal`led on
stdin), so it uses a few fast-importing standard modules only and never imports the package: it
starts once per program. It is a separate process because it must be single-threaded (it sets
limits and drops the uid between `fork` and `exec`) and a child subreaper (orphans of the program
are re-parented to it and reaped here, not by the eval process or PID 1).

Steps (EVALUATION.md, "The sandbox"):
1. become a child subreaper;
2. start the program in a new session (own process group), stdin from /dev/null, stdout and
   stderr to files, as the sandbox uid (when one is given), with rlimits set in the child;
3. on the wall-clock limit kill its process group;
4. kill every remaining descendant (subreaper children) and, with a sandbox uid, every process
   of that uid (`kill(-1, SIGKILL)` from a child that setuid()s to it) until none is left;
5. write `{"returncode", "timed_out", "wall_s", "sweep_rounds"}` (marshal) on stdout.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
SIGKILL = 9  # not `signal.SIGKILL`: importing `signal` (enum) costs more than a run here
LIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
}
MAX_SWEEP_ROUNDS = 200


def become_subreaper() -> None:
    """Make orphaned descendants children of this process (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def set_limits(limits: dict[str, int]) -> None:
    """Apply rlimits in the forked child (runs after the uid drop, before exec)."""
    for name, value in limits.items():
        hard = value + 1 if name == "cpu" else value  # SIGXCPU first, SIGKILL one second later
        resource.setrlimit(LIMITS[name], (value, hard))


def reap() -> None:
    """Collect every exited child without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def children() -> list[int]:
    """Direct children of this (single-threaded) process."""
    path = f"/proc/self/task/{os.getpid()}/children"
    try:
        with open(path) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def kill_descendants() -> None:
    """Kill children until none is left (orphans keep being re-parented to this subreaper)."""
    for _ in range(MAX_SWEEP_ROUNDS):
        reap()
        alive = children()
        if not alive:
            return
        for pid in alive:
            try:  # noqa: SIM105 (contextlib is a slow import)
                os.kill(pid, SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.001)


def uid_processes(uid: int) -> list[int]:
    """Live (non-zombie) processes whose real, effective or saved uid is `uid`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:  # exited meanwhile
            continue
        uids = {int(u) for u in status.get("Uid", "").split()[:3]}
        if uid in uids and not status.get("State", "").strip().startswith("Z"):
            found.append(int(entry.name))
    return found


def kill_uid(uid: int, gid: int) -> int:
    """Kill every process of `uid` until none is left; return the rounds it took (-1: gave up).

    `kill(-1, SIGKILL)` from a child that became `uid` reaches exactly that uid's processes
    (including ones that left our process tree with setsid + double fork); the killed
    descendants are re-parented to this subreaper and reaped here.
    """
    for rounds in range(1, MAX_SWEEP_ROUNDS + 1):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                os.kill(-1, SIGKILL)
            except BaseException:
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return -1
        kill_descendants()
        if not uid_processes(uid):
            return rounds
        time.sleep(min(0.001 * rounds, 0.02))
    return -1


def start(spec: dict, out: int, err: int) -> int:
    """Fork and exec the program: new session, stdio, uid drop, rlimits, working dir."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((devnull, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        user = spec["user"]
        if user:
            os.setgroups([])
            os.setgid(user["gid"])
            os.setuid(user["uid"])
        set_limits(spec["limits"])
        os.chdir(spec["cwd"])
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        os.execve(spec["argv"][0], spec["argv"], spec["env"])
    except BaseException as e:
        os.write(2, f"sandbox: could not start the program: {e!r}\n".encode())
    os._exit(127)


def wait(pid: int, timeout_s: float) -> int | None:
    """The exit code of `pid` (negative: signal), or None if it outlives `timeout_s`."""
    deadline, pause = time.monotonic() + timeout_s, 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def run(spec: dict) -> dict:
    """Run the program described by `spec` and clean up after it."""
    become_subreaper()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    out, err = os.open(spec["stdout"], flags, 0o600), os.open(spec["stderr"], flags, 0o600)
    begin = time.monotonic()
    pid = start(spec, out, err)
    os.close(out)
    os.close(err)
    returncode = wait(pid, spec["timeout_s"])
    timed_out = returncode is None
    if timed_out:
        try:  # noqa: SIM105
            os.killpg(pid, SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.monotonic() - begin
    kill_descendants()
    user = spec["user"]
    rounds = kill_uid(user["uid"], user["gid"]) if user else 0
    reap()
    return {
        "returncode": returncode,
        "timed_out": timed_out,
        "wall_s": wall_s,
        "sweep_rounds": rounds,
    }


if __name__ == "__main__":
    sys.stdout.buffer.write(marshal.dumps(run(marshal.loads(sys.stdin.buffer.read()))))
