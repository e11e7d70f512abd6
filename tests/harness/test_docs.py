"""docs/lm_eval.md's worked commands compose into task=lm_eval configs (nothing is run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "lm_eval.md"
# an indented command, continued over lines ending in a backslash
COMMAND = re.compile(r"^    (python -m backplay_exp (?:[^\n]*\\\n)*[^\n]*)", re.M)


def commands() -> list[list[str]]:
    found = [
        shlex.split(c.replace("\\\n", " ").split("#")[0]) for c in COMMAND.findall(DOC.read_text())
    ]
    return [c[3:] for c in found]


def test_the_doc_shows_the_toy_and_gsm8k_commands():
    shown = [" ".join(c) for c in commands()]
    assert len(shown) >= 5
    assert any("backplay_toy_mc" in c for c in shown)
    assert sum("backbone=llada_8b" in c and "lm_eval.tasks=[gsm8k]" in c for c in shown) == 2


@pytest.mark.parametrize("overrides", commands(), ids=lambda o: " ".join(o)[:60])
def test_command_composes(overrides):
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("config", overrides=overrides)
    assert cfg.task._target_ == "backplay_exp.tasks.harness.run"
    assert cfg.lm_eval.tasks
