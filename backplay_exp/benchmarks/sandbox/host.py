"""What the sandbox needs from the host: throwaway users, their slot locks, an interpreter.

EVALUATION.md: never run model code as root (`RLIMIT_NPROC` is ignored for root and a stray
`kill(-1)` would take the machine down). When we are root, each parallel worker gets its own
unprivileged uid (NPROC counts every process and thread of a uid, and the clean-up sweep kills
every process of it), created with `useradd` if missing. A uid is claimed with an exclusive
`flock` so that two eval jobs on one machine never share (and sweep) the same uid.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR_NAME = "backplay-sandbox-locks"
# where a world-readable Python usually lives when the project's own one is not
FALLBACK_INTERPRETERS = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")


@dataclass(frozen=True)
class User:
    """A sandbox account: `name`, `uid`, `gid`."""

    name: str
    uid: int
    gid: int


@dataclass
class Slot:
    """One parallel worker: its user (None when we are not root) and the lock held for it."""

    index: int
    user: User | None
    lock_fd: int | None = None

    def release(self) -> None:
        """Drop the uid lock (closing the descriptor releases the flock)."""
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def is_root() -> bool:
    """Whether this process runs as root (then programs must run as another uid)."""
    return os.geteuid() == 0


def ensure_user(name: str) -> User:
    """The account `name`, created (system user, no home, no login shell) if missing.

    Raises:
        RuntimeError: if `useradd` fails and the account still does not exist.
    """
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        cmd = [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            name,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:  # another job may have created it at the same time
            pw = pwd.getpwnam(name)
        except KeyError:
            raise RuntimeError(
                f"sandbox: could not create user {name!r} ({' '.join(cmd)}: "
                f"{done.stderr.strip()}); create it yourself or set benchmark.sandbox.user_prefix"
            ) from None
        log.info("sandbox: created user %s (uid %d)", name, pw.pw_uid)
    if pw.pw_uid == 0:
        raise RuntimeError(f"sandbox: user {name!r} has uid 0; pick another user_prefix")
    return User(name, pw.pw_uid, pw.pw_gid)


def lock_dir() -> Path:
    """A root-owned 0700 directory for the uid locks (refuses one planted by someone else)."""
    path = Path(tempfile.gettempdir()) / LOCK_DIR_NAME
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RuntimeError(
            f"sandbox: {path} must be a directory owned by uid {os.geteuid()} with mode 0700; "
            "remove it and run again"
        )
    return path


def claim_slots(n: int, user_prefix: str, max_users: int) -> list[Slot]:
    """`n` worker slots; when root, each with its own locked sandbox uid.

    Raises:
        RuntimeError: if fewer than `n` of the `max_users` accounts are free.
    """
    if not is_root():
        return [Slot(i, None) for i in range(n)]
    locks, slots = lock_dir(), []
    for k in range(max_users):
        if len(slots) == n:
            break
        fd = os.open(locks / f"{user_prefix}{k}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        slots.append(Slot(len(slots), ensure_user(f"{user_prefix}{k}"), fd))
    if len(slots) < n:
        for slot in slots:
            slot.release()
        raise RuntimeError(
            f"sandbox: only {len(slots)} of {max_users} sandbox users are free for {n} workers; "
            "lower benchmark.sandbox.workers or raise benchmark.sandbox.max_users"
        )
    return slots


def world_accessible(path: str | Path) -> bool:
    """Whether any user can execute `path` (every parent dir o+x, the file o+rx)."""
    real = Path(os.path.realpath(path))
    try:
        if real.stat().st_mode & 0o005 != 0o005:
            return False
        return all(p.stat().st_mode & 0o001 for p in real.parents)
    except OSError:
        return False


def find_interpreter(explicit: str | None) -> str:
    """A Python the sandbox users can run: `explicit`, else this one, else a system python3.

    The project's interpreter often lives in root's home (mode 0700, e.g. pyenv under /root), which
    an unprivileged uid cannot reach; a system `/usr/bin/python3` usually works (same stdlib
    for the programs of MBPP/HumanEval, which import nothing else).

    Raises:
        FileNotFoundError: if no candidate is executable by other users.
    """
    candidates = [explicit] if explicit else [sys.executable, *FALLBACK_INTERPRETERS]
    if not is_root() and not explicit:
        return sys.executable
    for candidate in candidates:
        if candidate and world_accessible(candidate):
            return os.path.realpath(candidate)
    raise FileNotFoundError(
        f"sandbox: none of {candidates} is executable by an unprivileged user; set "
        "benchmark.sandbox.interpreter to a world-readable python3 (e.g. apt-get install python3)"
    )
