"""scripts/import_graph.py: the package's imports respect the layers and close no circle."""

import pytest

from tests.scripts import script_module


@pytest.fixture(scope="module")
def graph():
    with script_module("import_graph") as module:
        yield module


def test_the_package_has_no_cycle_and_no_upward_import(graph, capsys):
    code = graph.main([])
    text = capsys.readouterr().out
    assert "Module cycles: 0" in text and "Subpackage cycles: 0" in text, text
    assert "Upward imports: 0" in text, text
    assert code == 0


def write(root, files):
    for name, source in files.items():
        path = root / "backplay_exp" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "backplay_exp"


def test_a_deferred_circle_and_an_upward_import_are_found(graph, tmp_path):
    root = write(tmp_path, {
        "__init__.py": "",
        "report/__init__.py": "",
        # the old knot: table imports plot at import time, plot imports table in a function
        "report/table.py": "from backplay_exp.report.plot import pareto\n",
        "report/plot.py": "def f():\n    from backplay_exp.report import table\n",
        "utils/__init__.py": "",
        "utils/io.py": "from ..tasks import eval\n",  # relative, and upward
        "tasks/__init__.py": "",
        "tasks/eval.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from backplay_exp.report.table import x\n"
        ),
    })  # fmt: skip
    edges = graph.read_graph(root)
    kinds = {(e.source, e.target): e.kind for e in edges}
    assert kinds == {
        ("report.table", "report.plot"): "module",
        ("report.plot", "report.table"): "deferred",
        ("utils.io", "tasks.eval"): "module",
        ("tasks.eval", "report.table"): "typing",
    }
    text, clean = graph.report(edges)
    assert not clean
    assert "Module cycles: 1\n  report.plot <-> report.table" in text
    assert "utils.io:1 -> tasks.eval (module; layer 0 -> 5)" in text
    assert "Upward imports: 1" in text  # the TYPE_CHECKING import is listed apart


def test_cycles_are_strongly_connected_sets(graph):
    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")]
    assert graph.cycles(pairs) == [["a", "b", "c"], ["d", "e"]]
