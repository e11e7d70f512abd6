"""A trace's files: `<stem>.jsonl` (the records), `<stem>.html` (the page), `<stem>.png`.

`task=trace` writes `trace.*` for the decoders it compares; `task=eval` with
`task.trace_samples=N` writes `traces/<problem id>.jsonl` and `.html` for N problems it
samples (`traced_problems`), and `trace_pages` lists the pages an eval wrote.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backplay_exp.samplers.trace.page import write_page
from backplay_exp.samplers.trace.records import read_trace, write_jsonl

TRACES_DIR = "traces"


def write_trace(
    directory: Path, stem: str, records: list[dict[str, Any]], title: str, figure: bool = True
) -> list[Path]:
    """Write the records, their page and (with `figure`) their figure; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    traces = read_trace(records)
    paths = [
        write_jsonl(directory / f"{stem}.jsonl", records),
        write_page(directory / f"{stem}.html", traces, title),
    ]
    if figure:  # matplotlib is imported only to draw one (an eval's traces have none)
        from backplay_exp.samplers.trace.figure import draw_traces

        paths.append(draw_traces(traces, directory / f"{stem}.png", title))
    return paths


def file_stem(problem_id: str) -> str:
    """A problem id as a file name (characters other than letters, digits, `.-_` become `_`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", problem_id)


def traced_problems(ids: Sequence[str], n: int, seed: int) -> set[str]:
    """`n` of the problem `ids` (all if fewer), drawn with `seed`: the ones an eval traces."""
    return set(random.Random(seed).sample(list(ids), min(n, len(ids))))


def trace_pages(run_dir: Path) -> list[Path]:
    """The trace pages an eval wrote into its run directory (`traces/<id>.html`), sorted."""
    return sorted((run_dir / TRACES_DIR).glob("*.html"))
