"""The trace figure (`trace.png`): the page's rows as a static picture, decoders side by side.

The same reading as the page (`page.py`): a panel per decoder, a row per step (the final response
last), a cell per response position coloured by the step that committed its token (the page's
colours), the tokens committed in that step outlined in black, remasked ones in red with the
token struck through and the head's error probability beside it, edits outlined in purple,
masks grey. Made with matplotlib's object API (no global backend is chosen).
"""

from __future__ import annotations

import colorsys
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from backplay_exp.samplers.trace.records import MASK_TEXT, DecoderTrace, Row

# cell size in inches, and the gap (in cells) between blocks
CELL_W, CELL_H, BLOCK_GAP = 0.26, 0.32, 0.35
LEGEND = (
    "colour: the step that committed the token (blue early, red late) · black outline: committed "
    "in this step · red, struck through: remasked in this step, the head's error probability "
    "below · purple outline: edited · grey ·: mask · ∎: EoS"
)
MASK_FACE, REMASK_FACE, REMASK_EDGE, EDIT_EDGE = "#eeeeee", "#ffe3e3", "#c62828", "#7b1fa2"


def step_rgb(step: int, last: int) -> tuple[float, float, float]:
    """The page's colour of a token committed at `step` of `last` steps (HSL, blue to red)."""
    hue = (230 - 230 * step / max(last, 1)) / 360
    return colorsys.hls_to_rgb(hue, 0.82, 0.7)


def draw_row(ax, row: Row, y: float, last: int, block_length: int) -> None:
    """One step's cells at height `y` (one unit per row, one per cell)."""
    for cell in row.cells:
        x = cell.pos + BLOCK_GAP * (cell.pos // block_length)
        face = MASK_FACE if cell.born is None else step_rgb(cell.born, last)
        edge, width, text, colour, weight = "none", 0.0, cell.text, "#222222", "normal"
        if cell.kind == "mask":
            text, colour = MASK_TEXT, "#aaaaaa"
        elif cell.kind == "commit":
            edge, width, weight = "#222222", 1.1, "bold"
        elif cell.kind == "edit":
            edge, width, weight = EDIT_EDGE, 1.6, "bold"
        elif cell.kind == "remask":
            face, edge, width, colour = REMASK_FACE, REMASK_EDGE, 1.3, REMASK_EDGE
        elif cell.kind == "fill":
            colour = "#999999"
        ax.add_patch(
            Rectangle((x + 0.04, y - 0.44), 0.92, 0.88, facecolor=face, edgecolor=edge, lw=width)
        )
        remasked = cell.kind == "remask"
        ax.text(x + 0.5, y + (0.12 if remasked else 0), text, ha="center", va="center",
                fontsize=7, color=colour, fontweight=weight, family="monospace")  # fmt: skip
        if remasked:
            ax.plot([x + 0.22, x + 0.78], [y + 0.12, y + 0.12], color=REMASK_EDGE, lw=0.8)
            score = "-" if cell.score is None else f"{cell.score:.2f}".lstrip("0")
            ax.text(x + 0.5, y - 0.27, score, ha="center", va="center", fontsize=4.8,
                    color=REMASK_EDGE)  # fmt: skip


def summary(trace: DecoderTrace) -> str:
    """The panel's title: label, answer and verdict, counts."""
    res = trace.result
    verdict = ""
    if res.get("correct") is not None:
        verdict = f"answer {res.get('extracted')} ({'right' if res['correct'] else 'wrong'}), "
    return (
        f"{trace.label}\n{verdict}NFE {res['nfe']}, {res['remasks']} remasks, {res['edits']} edits"
    )


def draw_traces(traces: list[DecoderTrace], path: Path, title: str) -> Path:
    """Write the figure of `traces` (one panel each) to `path` (PNG)."""
    last = max((r.step for t in traces for r in t.steps), default=0)
    height = max(len(t.rows) for t in traces)
    widths = [t.header["gen_length"] * (1 + BLOCK_GAP / t.header["block_length"]) for t in traces]
    label_w = 1.5  # inches for the row labels
    fig = Figure(
        figsize=(sum(w * CELL_W + label_w for w in widths), height * CELL_H + 1.3), dpi=150
    )
    axes = fig.subplots(1, len(traces), squeeze=False, width_ratios=widths)[0]
    for ax, trace, width in zip(axes, traces, widths, strict=True):
        block = trace.header["block_length"]
        for n, row in enumerate(trace.rows):
            y = -n - (0.3 if row.step is None else 0)  # the response a little apart
            draw_row(ax, row, y, last, block)
        ax.set_xlim(0, width)
        ax.set_ylim(-height + 0.2, 0.8)
        ax.set_yticks([-n - (0.3 if r.step is None else 0) for n, r in enumerate(trace.rows)])
        ax.set_yticklabels([r.label for r in trace.rows], fontsize=6)
        ax.set_xticks([])
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(summary(trace), fontsize=8, loc="left")
    fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    fig.text(0.01, 0.01, LEGEND, fontsize=6.5, color="#444444", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    return path
