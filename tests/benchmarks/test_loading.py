"""Loaders on tiny fixture files: local files and directories, limit, ids, malformed rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backplay_exp.benchmarks.loading import Source, check_rows, load_rows, take
from tests.benchmarks.conftest import build_benchmark

GSM8K_ROWS = [
    {"question": f"What is {i} plus {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}
    for i in range(5)
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def hf_cache(tmp_path) -> str:
    return str(tmp_path / "hf_cache")


def gsm8k(path, hf_cache, **overrides):
    return build_benchmark("gsm8k", path=str(path), cache_dir=hf_cache, **overrides)


# --- sources -------------------------------------------------------------------------------------


def test_gsm8k_from_a_jsonl_file(tmp_path, hf_cache):
    path = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS)
    problems = gsm8k(path, hf_cache).problems()
    assert [p.id for p in problems] == [f"gsm8k/test/{i}" for i in range(5)]
    assert problems[3].prompt == "Question: What is 3 plus 3?\nAnswer:"
    assert problems[3].answer == "6"
    assert problems[3].meta["convention"] == "question_answer_0shot"


def test_limit_keeps_the_same_ids(tmp_path, hf_cache):
    path = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS)
    full = gsm8k(path, hf_cache).problems()
    assert gsm8k(path, hf_cache, limit=2).problems() == full[:2]
    assert gsm8k(path, hf_cache, limit=0).problems() == []
    with pytest.raises(ValueError, match="limit must be >= 0"):
        take([1], -1)


def test_parquet_file_and_dataset_directories(tmp_path, hf_cache):
    import datasets

    test, train = datasets.Dataset.from_list(GSM8K_ROWS), datasets.Dataset.from_list(GSM8K_ROWS[:2])
    test.to_parquet(str(tmp_path / "test.parquet"))
    datasets.DatasetDict({"test": test, "train": train}).save_to_disk(str(tmp_path / "saved"))
    raw = tmp_path / "raw"
    raw.mkdir()
    write_jsonl(raw / "test.jsonl", GSM8K_ROWS)
    write_jsonl(raw / "train.jsonl", GSM8K_ROWS[:2])
    expected = gsm8k(write_jsonl(tmp_path / "t.jsonl", GSM8K_ROWS), hf_cache).problems()
    for path in (tmp_path / "test.parquet", tmp_path / "saved", raw):
        assert gsm8k(path, hf_cache).problems() == expected, path
    source = Source("gsm8k", None, path=str(tmp_path / "saved"), cache_dir=hf_cache)
    assert len(load_rows(source, "train")) == 2
    assert len(load_rows(source, None)) == 7  # every split
    with pytest.raises(ValueError, match="no split 'validation'"):
        load_rows(source, "validation")


def test_fewshot_examples_come_from_the_train_split(tmp_path, hf_cache):
    test = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS)
    train_rows = [
        {"question": "Q1?", "answer": "A1\n#### 1"},
        {"question": "Q2?", "answer": "#### 2"},
    ]
    train = write_jsonl(tmp_path / "train.jsonl", train_rows)
    with pytest.raises(ValueError, match=r"set benchmark\.fewshot_path"):
        gsm8k(test, hf_cache, num_fewshot=2).problems()
    problem = gsm8k(test, hf_cache, num_fewshot=2, fewshot_path=str(train)).problems()[0]
    assert problem.prompt == (
        "Question: Q1?\nAnswer: A1\n#### 1\n\nQuestion: Q2?\nAnswer: #### 2\n\n"
        "Question: What is 0 plus 0?\nAnswer:"
    )


def test_missing_and_unsupported_files(tmp_path, hf_cache):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gsm8k(tmp_path / "nope.jsonl", hf_cache).problems()
    (tmp_path / "data.csv").write_text("question,answer\n")
    with pytest.raises(ValueError, match="unsupported data file"):
        gsm8k(tmp_path / "data.csv", hf_cache).problems()
    with pytest.raises(ValueError, match=r"set benchmark\.path"):
        load_rows(Source("x", None), "test")


# --- malformed rows ------------------------------------------------------------------------------


def test_invalid_json_line_is_named(tmp_path, hf_cache):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GSM8K_ROWS[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"row 1: invalid JSON"):
        gsm8k(path, hf_cache).problems()


def test_missing_field_is_named(tmp_path, hf_cache):
    rows = [*GSM8K_ROWS[:2], {"question": "no answer here"}]
    with pytest.raises(ValueError, match=r"gsm8k: row 2: field 'answer' is missing"):
        gsm8k(write_jsonl(tmp_path / "t.jsonl", rows), hf_cache).problems()


def test_wrong_type_is_named(tmp_path, hf_cache):
    rows = [*GSM8K_ROWS[:3], {"question": "Q?", "answer": 12}]
    with pytest.raises(ValueError, match=r"row 3: field 'answer' should be str, got int"):
        gsm8k(write_jsonl(tmp_path / "t.jsonl", rows), hf_cache).problems()


def test_answer_without_final_number_is_named(tmp_path, hf_cache):
    rows = [*GSM8K_ROWS[:1], {"question": "Q?", "answer": "forgot the final line"}]
    with pytest.raises(ValueError, match=r"row 1: field 'answer' has no '#### <number>'"):
        gsm8k(write_jsonl(tmp_path / "t.jsonl", rows), hf_cache).problems()


def test_check_rows_list_fields_hold_strings():
    with pytest.raises(ValueError, match="row 0: field 'test_list' should hold strings"):
        check_rows("mbpp", [{"test_list": ["assert x", 3]}], {"test_list": list})


# --- the other benchmarks ------------------------------------------------------------------------


def mbpp_row(task_id: int) -> dict:
    return {
        "task_id": task_id,
        "text": f"Write a function f{task_id} returning {task_id}.",
        "code": f"def f{task_id}():\n    return {task_id}",
        "test_list": [f"assert f{task_id}() == {task_id}"] * 3,
        "test_setup_code": "",
        "challenge_test_list": [],
    }


def test_mbpp_selects_by_task_id_and_builds_fewshot_prompts(tmp_path, hf_cache, sandbox):
    path = write_jsonl(tmp_path / "mbpp.jsonl", [mbpp_row(i) for i in (12, 2, 3, 4, 11, 600)])
    bench = build_benchmark("mbpp", sandbox, path=str(path), cache_dir=hf_cache)
    problems = bench.problems()
    assert [p.id for p in problems] == ["mbpp/11", "mbpp/12"]
    assert problems[0].prompt == (
        "You are an expert Python programmer, and here is your task: Write a function f11 "
        "returning 11. Your code should pass these tests:\n\n"
        + "\n".join(["assert f11() == 11"] * 3)
        + "\n[BEGIN]\n"
    )
    shots = build_benchmark(
        "mbpp", sandbox, path=str(path), cache_dir=hf_cache, num_fewshot=3
    ).problems()[0]
    assert shots.prompt.count("[DONE]") == 3 and "def f2():" in shots.prompt
    assert shots.prompt.endswith(problems[0].prompt)
    without_shots = write_jsonl(tmp_path / "test_only.jsonl", [mbpp_row(11)])
    with pytest.raises(ValueError, match=r"few-shot task_ids \[2, 3, 4\] are not in"):
        build_benchmark(
            "mbpp", sandbox, path=str(without_shots), cache_dir=hf_cache, num_fewshot=3
        ).problems()


def test_humaneval_defaults_to_the_bundled_data(hf_cache, sandbox):
    problems = build_benchmark("humaneval", sandbox, cache_dir=hf_cache, limit=3).problems()
    assert [p.id for p in problems] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert problems[0].prompt.startswith("from typing import List\n\n\ndef has_close_elements(")
    assert problems[0].prompt == problems[0].meta["prompt"]


def test_math_rows_ids_and_gold(tmp_path, hf_cache):
    rows = [
        {"problem": "1+1?", "solution": r"It is $\boxed{2}$.", "level": "Level 1", "type": "x"},
        {"problem": "Half?", "solution": r"$\boxed{\frac{1}{2}}$", "answer": r"\frac12",
         "unique_id": "test/algebra/1.json"},
    ]  # fmt: skip
    bench = build_benchmark("math", path=str(write_jsonl(tmp_path / "m.jsonl", rows)),
                            cache_dir=hf_cache)  # fmt: skip
    first, second = bench.problems()
    assert (first.id, first.answer) == ("math/test/0", "2")
    assert (second.id, second.answer) == ("test/algebra/1.json", r"\frac12")  # `answer` wins
    assert first.prompt.startswith("1+1?\nPlease reason step by step")
    assert first.prompt.endswith(r"within \boxed{}.")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"problem": "?", "solution": "no box"}])
    with pytest.raises(ValueError, match=r"math: row 0: field 'solution' has no \\boxed"):
        build_benchmark("math", path=str(bad), cache_dir=hf_cache).problems()


def test_chat_template_needs_and_uses_the_tokenizer(tmp_path, hf_cache):
    from backplay_exp.data.tokenizer import char_tokenizer

    path = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS)
    bench = gsm8k(path, hf_cache, chat_template=True, limit=1)
    with pytest.raises(RuntimeError, match="use_tokenizer"):
        bench.problems()
    tokenizer = char_tokenizer()
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    bench.use_tokenizer(tokenizer)
    assert bench.problems()[0].prompt == ("<user>Question: What is 0 plus 0?\nAnswer:\n<assistant>")


@pytest.mark.parametrize("option", ["gsm8k", "math", "math500", "mbpp", "humaneval"])
def test_every_option_builds_offline_with_paper_geometry(option):
    """Building a benchmark reads nothing and downloads nothing (that happens in problems())."""
    bench = build_benchmark(option)
    assert (bench.gen_length, bench.block_length) == (1024, 32)  # METHOD.md section 6
    assert bench.convention and bench.stop_strings
    assert bench.cut("x" + bench.stop_strings[0] + "y") == "x"
