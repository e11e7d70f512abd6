"""Bad input to task=lm_eval: one line naming what to change, raised before any stage trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from backplay_exp.harness.model import ROLLING
from backplay_exp.harness.taskset import prepare
from backplay_exp.tasks.runner import run_task
from tests.harness.conftest import FAST

REPO_TASKS = Path(__file__).resolve().parents[2] / "lm_eval_tasks"


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert err.value.__cause__ is None  # no chained lm-eval traceback under it
    return message


def test_unknown_task_name(compose_cfg, tmp_path):
    cfg = compose_cfg(*FAST, "lm_eval.tasks=[backplay_gsm8kk]")
    with pytest.raises(ValueError, match="unknown lm-eval task") as err:
        run_task(cfg)
    assert one_line(err) == (
        "lm_eval.tasks: unknown lm-eval task 'backplay_gsm8kk' (not in lm-eval's registry, "
        "lm_eval_tasks/ or lm_eval.include_path); did you mean backplay_gsm8k, backplay_mbpp, "
        "backplay_toy_mc?"
    )
    assert not (tmp_path / "cache").exists()  # nothing trained first


def write_task(tmp_path: Path, base: str, **changes) -> Path:
    """A copy of a repo task YAML under another name (its `!function`s kept by path)."""
    text = (REPO_TASKS / f"{base}.yaml").read_text()
    text = text.replace("!function backplay_tasks.", f"!function {REPO_TASKS}/backplay_tasks.")
    for key, value in changes.items():
        text = text.replace(f"{key}: {value[0]}", f"{key}: {value[1]}")
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / f"{base}_copy.yaml").write_text(text)
    return tmp_path / "tasks"


def test_code_task_without_a_sandbox_route(compose_cfg, tmp_path):
    tasks = write_task(tmp_path, "backplay_humaneval", task=("backplay_humaneval", "my_code"))
    cfg = compose_cfg(*FAST, "lm_eval.tasks=[my_code]", f"lm_eval.include_path=[{tasks}]")
    with pytest.raises(ValueError, match="executes model-written code") as err:
        run_task(cfg)
    assert one_line(err) == (
        "lm-eval task 'my_code' executes model-written code and the project's sandbox has no "
        "route for it (routed: names starting with humaneval, mbpp, backplay_humaneval, "
        "backplay_mbpp); set lm_eval.allow_unsandboxed_code=true to let lm-eval run it unguarded"
    )
    assert not (tmp_path / "cache").exists()
    # the explicit opt-in lets lm-eval run it (its own exec); a routed task needs a sandbox
    allowed = prepare(["my_code"], include_paths=[str(tasks)], include_defaults=False,
                      allow_unsandboxed_code=True)  # fmt: skip
    assert allowed.runs_code
    with pytest.raises(ValueError, match="code tasks need a sandbox"):
        prepare(["backplay_humaneval"], include_defaults=False,
                sandbox_tasks=["backplay_humaneval"])  # fmt: skip


def test_perplexity_task(compose_cfg, tmp_path):
    tasks = write_task(
        tmp_path, "backplay_toy", task=("backplay_toy", "my_rolling"),
        output_type=("generate_until", "loglikelihood_rolling"),
    )  # fmt: skip
    cfg = compose_cfg(*FAST, "lm_eval.tasks=[my_rolling]", f"lm_eval.include_path=[{tasks}]")
    with pytest.raises(ValueError, match="loglikelihood_rolling") as err:
        run_task(cfg)
    assert one_line(err) == f"lm-eval task 'my_rolling' asks for {ROLLING}"


def test_missing_local_data_file(compose_cfg, tmp_path):
    cfg = compose_cfg(*FAST, "lm_eval.tasks=[backplay_gsm8k]", f"lm_eval.data_dirs=[{tmp_path}]")
    with pytest.raises(FileNotFoundError, match="data file") as err:
        run_task(cfg)
    message = one_line(err)
    assert message.startswith(
        f"lm-eval task 'backplay_gsm8k': data file 'gsm8k/train.jsonl' is in none of "
        f"lm_eval.data_dirs (tried {tmp_path}"
    )
    assert message.endswith("set lm_eval.data_dirs to the directory that holds it")
