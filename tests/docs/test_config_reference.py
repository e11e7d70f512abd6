"""docs/config.md is what scripts/config_reference.py makes of conf/ today, and complete."""

from pathlib import Path

import pytest

from tests.scripts import script_module

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def reference():
    with script_module("config_reference") as module:
        yield module


def test_docs_config_md_is_up_to_date(reference, capsys):
    code = reference.main(["--check"])
    assert code == 0, capsys.readouterr().err


def test_check_fails_on_a_stale_page(reference, tmp_path, capsys):
    stale = tmp_path / "config.md"
    stale.write_text((ROOT / "docs" / "config.md").read_text().replace("`tiny`", "`small`", 1))
    assert reference.main(["--check", "--out", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert reference.main(["--check", "--out", str(tmp_path / "missing.md")]) == 1


def test_every_option_of_every_group_has_a_section():
    page = (ROOT / "docs" / "config.md").read_text()
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        group = path.parent.relative_to(ROOT / "conf").as_posix()
        if group == ".":
            assert "### `conf/config.yaml`" in page
        else:
            assert f"### `{group}/{path.stem}`" in page, path


def test_descriptions_and_key_notes_come_from_the_comments(reference, tmp_path):
    option = tmp_path / "demo.yaml"
    option.write_text(
        "# @package _global_\n"
        "# What the option is for,\n"
        "# over two lines.\n"
        "defaults:\n"
        "  - base\n"
        "  - _self_\n"
        "\n"
        "# why this value\n"
        "threshold: 0.75\n"
        "outer:\n"
        "  # a nested key\n"
        "  inner: ${..threshold}\n"
        "  items: [a, b]\n"
        "  listed:\n"
        "    - x\n"
        "    - y\n"
        "  claims:\n"
        "    - name: C1\n"
        "      line: >-\n"
        "        two lines\n"
        "        folded\n"
        "text: >-\n"
        "  folded over\n"
        "  lines\n"
    )
    parsed = reference.parse(option, "demo")
    assert parsed.description == "What the option is for,\nover two lines."
    assert parsed.package == "_global_" and parsed.defaults == ["base", "_self_"]
    rows = {e.path: (e.value, e.comment) for e in parsed.entries}
    assert rows == {
        "threshold": ("0.75", "why this value"),
        "outer.inner": ("${..threshold}", "a nested key"),
        "outer.items": ("[a, b]", ""),
        "outer.listed": ("[x, y]", ""),
        "outer.claims": ("(a list of 1 entry)", ""),
        "text": ("folded over lines", ""),
    }
