"""The worked examples of a doc: its `# file: <path>` code blocks, loaded without touching the repo.

docs/decoding.md and docs/extending.md show each extension as whole files (a class, a YAML);
their tests write those files to a scratch directory, import the modules under the names their
paths give and put the YAMLs on Hydra's search path.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

BLOCK = re.compile(r"```(python|yaml)\n# file: (\S+)\n(.*?)```", re.S)


def doc_files(doc: Path) -> dict[str, str]:
    """The doc's `# file:` blocks, by the path they name."""
    return {path: body for _, path, body in BLOCK.findall(doc.read_text())}


def write_configs(files: Iterable[tuple[str, str]], root: Path) -> str:
    """Write `conf/...` files under `root`; the override that puts them on Hydra's search path."""
    for path, body in files:
        target = root / "conf" / Path(path).relative_to("conf")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    return f"hydra.searchpath=[file://{root / 'conf'}]"


def install(files: dict[str, str], root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Import the `.py` files as the modules their paths name (for this test only) and write
    the others as configs; the search-path override."""
    for path, body in files.items():
        if not path.endswith(".py"):
            continue
        name = path.removesuffix(".py").replace("/", ".")
        source = root / Path(path).name
        source.write_text(body)
        spec = importlib.util.spec_from_file_location(name, source)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
    configs = [(p, body) for p, body in files.items() if not p.endswith(".py")]
    return write_configs(configs, root)
