"""What an eval job measures: accuracy, NFE, remasks, edits and their outcomes, speed.

`summarize` turns the per-problem records of `samples.jsonl` into the metrics of `results.json`
(ARCHITECTURE.md "Contracts"); `edit_outcomes` counts, per problem, the T2T edits that fixed a
token and those that broke one. The head's AUROC / AP are torchmetrics' (modules/correction.py);
the report's means and 95% intervals over seeds are `report/aggregate.py`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def edit_outcomes(events: torch.Tensor, reference: torch.Tensor) -> tuple[list[int], list[int]]:
    """Per problem: edits that fixed a token (wrong -> reference) and that broke one.

    Args:
        events: (E, 4) long `(problem, response position, old, new)` (`DecodeResult`).
        reference: (B, gen_length) reference response tokens.
    """
    row, pos, old, new = events.cpu().unbind(-1)
    ref = reference[row, pos]
    fixed = torch.bincount(row[(old != ref) & (new == ref)], minlength=len(reference))
    broke = torch.bincount(row[(old == ref) & (new != ref)], minlength=len(reference))
    return fixed.tolist(), broke.tolist()


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Accuracy, mean NFE, remasks and edits, edit intensity, wall time and tokens/s.

    Edit intensity is edits per generated token (tokens before the first EoS), over all
    problems; `edits_fixed_mean` / `edits_broke_mean` are None without reference responses.
    """
    n = len(records)
    wall = sum(r["wall_s"] for r in records)
    tokens = sum(r["tokens"] for r in records)
    edits = sum(r.get("edits", 0) for r in records)
    known = all(r.get("edits_fixed") is not None for r in records)
    return {
        "n": n,
        "accuracy": sum(r["correct"] for r in records) / n,
        "nfe_mean": sum(r["nfe"] for r in records) / n,
        "remasks_mean": sum(r["remasks"] for r in records) / n,
        "edits_mean": edits / n,
        "edit_intensity": edits / max(tokens, 1),
        "edits_fixed_mean": sum(r["edits_fixed"] for r in records) / n if known else None,
        "edits_broke_mean": sum(r["edits_broke"] for r in records) / n if known else None,
        "wall_s": wall,
        "tokens_per_s": tokens / wall if wall > 0 else float("nan"),
    }
