"""Code tasks through lm-eval, scored in the project's sandbox (never lm-eval's exec).

HumanEval's canonical solutions, replayed as completions through the repo's
`backplay_humaneval` task, all pass; hostile completions get the verdicts task=eval's scorer
gives the same programs, and leave the host alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from backplay_exp.benchmarks.sandbox.host import is_root
from backplay_exp.harness.replay import ReplayLM
from backplay_exp.harness.taskset import run_tasks
from tests.benchmarks.conftest import build_benchmark, make_sandbox

ROUTED = ["backplay_humaneval", "backplay_mbpp"]


def run_humaneval(answer, sandbox, limit=None):
    results = run_tasks(
        ReplayLM(answer), ["backplay_humaneval"], include_defaults=False,
        sandbox=lambda: sandbox, sandbox_tasks=ROUTED, limit=limit, bootstrap_iters=0,
    )  # fmt: skip
    samples = sorted(results["samples"]["backplay_humaneval"], key=lambda s: s["doc_id"])
    return results["results"]["backplay_humaneval"], samples


@pytest.mark.slow  # 164 programs in the sandbox: ~15-20 s on 2 busy cores
def test_canonical_solutions_pass_164_of_164():
    score, samples = run_humaneval(lambda inst: inst.doc["canonical_solution"], make_sandbox())
    failures = {s["doc"]["task_id"]: s["filtered_resps"][0] for s in samples if s["pass@1"] < 1}
    assert failures == {}
    assert len(samples) == 164 and score["pass@1,create_test"] == 1.0


def test_hostile_completions_are_contained_as_in_task_eval(tmp_path):
    precious = Path(tempfile.mkstemp(prefix="backplay-precious-")[1])  # world-open /tmp
    precious.chmod(0o666)
    hostile = {
        0: f"    import os\n    os.remove({str(precious)!r})\n    return []\n",
        1: "    while True:\n        pass\n",
    }
    if is_root():  # RLIMIT_NPROC needs a throwaway uid; without one a fork bomb hits the host
        hostile[2] = "    import os\n    while True:\n        try:\n            os.fork()\n" \
            "        except OSError:\n            pass\n"  # fmt: skip
    sandbox = make_sandbox(timeout_s=2.0, cpu_s=3)
    try:
        _, samples = run_humaneval(lambda inst: hostile[inst.doc_id], sandbox, len(hostile))
        verdicts = [s["filtered_resps"][0][0] for s in samples]
        bench = build_benchmark("humaneval", sandbox, cache_dir=str(tmp_path / "hf"))
        problems = bench.problems()[: len(hostile)]
        direct = bench.score(problems, [bench.cut(hostile[i]) for i in range(len(hostile))])
        assert [v["detail"].split(":")[0] for v in verdicts] == [
            d.detail.split(":")[0] for d in direct
        ]
        assert not any(v["passed"] for v in verdicts)
        assert verdicts[1]["detail"].startswith("timed_out")
        if is_root() or sandbox.uses_namespaces:
            assert precious.exists()  # deletion refused (uid) or invisible (namespaces)
    finally:
        precious.unlink(missing_ok=True)


def test_sandbox_metric_refuses_to_run_unrouted():
    from backplay_exp.harness.code import UNROUTED, pass_at_1

    with pytest.raises(RuntimeError) as err:
        pass_at_1(["assert f() == 1"], [["def f():\n    return 1"]])
    assert str(err.value) == UNROUTED


def test_mbpp_local_file_references_pass_with_the_three_austin_shots():
    from tests.harness.conftest import SHARED_DATA

    if not (SHARED_DATA / "mbpp" / "mbpp.jsonl").exists():
        pytest.skip(f"MBPP data not available at {SHARED_DATA}")
    results = run_tasks(
        ReplayLM(lambda inst: inst.doc["code"] + "\n[DONE]\nmore text"), ["backplay_mbpp"],
        data_dirs=[str(SHARED_DATA)], include_defaults=False, sandbox=make_sandbox,
        sandbox_tasks=ROUTED, limit=8, bootstrap_iters=0,
    )  # fmt: skip
    samples = sorted(results["samples"]["backplay_mbpp"], key=lambda s: s["doc_id"])
    assert [s["doc"]["task_id"] for s in samples] == list(range(11, 19))  # the test split
    assert all(s["pass@1"] == 1.0 for s in samples), [s["filtered_resps"] for s in samples]
    prompt = samples[0]["arguments"][0][0]
    assert prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3  # shots 2, 3, 4
    assert "similar elements" in prompt.split("[DONE]")[0]  # task 2 first
