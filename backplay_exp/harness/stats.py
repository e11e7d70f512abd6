"""What the decoder spent on each lm-eval request, and per document (`task=lm_eval`'s records).

`BackplayLM` adds one row per request it answers (forward passes, remasks, edits, tokens, wall
time, canvas); `requests_stats` sums a document's requests (a multiple-choice document has one
per choice), which `records.sample_records` joins with lm-eval's per-sample scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from lm_eval.api.instance import Instance

COUNTS = ("nfe", "remasks", "edits", "tokens", "wall_s")


class RequestLog:
    """The rows of the requests one rank answered; lm-eval's padding copies are left out."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._kept: Counter[tuple] = Counter()

    def add(
        self,
        request: Instance,
        nfe: int,
        remasks: int,
        edits: int,
        tokens: int,
        wall: float,
        canvas: int | None,
    ) -> None:
        """Keep a request's counts; lm-eval's padding copies (beyond its repeats) are not kept.

        With several ranks lm-eval pads a rank that has fewer requests with copies of its last
        one; they are decoded but belong to no document.
        """
        key = (request.task_name, request.doc_id, request.idx)
        self._kept[key] += 1
        if self._kept[key] > (request.repeats or 1):
            return
        self.rows.append(
            {
                "task": request.task_name,
                "doc_id": request.doc_id,
                "nfe": int(nfe),
                "remasks": int(remasks),
                "edits": int(edits),
                "tokens": tokens,
                "wall_s": wall,
                "canvas": canvas,
            }
        )


def requests_stats(stats: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (task, doc_id): the sums of its requests' NFE, remasks, edits, tokens and wall time.

    A multiple-choice document has one request per choice; all of them count.
    """
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for s in stats:
        key = (s["task"], s["doc_id"])
        if key not in merged:
            merged[key] = {k: s[k] for k in COUNTS}
            merged[key]["requests"] = 1
        else:
            for k in COUNTS:
                merged[key][k] += s[k]
            merged[key]["requests"] += 1
    return merged
