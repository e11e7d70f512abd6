"""The trace page (`trace.html`): a decode step by step, its decoders side by side.

One self-contained HTML file (inline CSS and a few lines of inline JS, nothing fetched: it opens
offline from disk). Each decoder is a column; each of its steps a row: the response canvas as
tokens, coloured by the step that committed them (the same colour is the same step in every
column), masks as `·`, the tokens committed this step outlined, remasked ones struck through in
red with the head's error probability, edits outlined in purple. Hovering a token shows its
position, the step that committed it, the top proposals and confidences where it changed, the
head's error probability where it judged, and for a remask the token that replaced it; the
position is highlighted in every row of its column. docs/decoding.md tells how to read it.
"""

from __future__ import annotations

import html
from pathlib import Path

from backplay_exp.samplers.trace.records import Cell, DecoderTrace, Row

STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 17px; margin: 0 0 6px; }
h2 { font-size: 14px; margin: 0 0 2px; }
code { background: #f3f3f3; padding: 0 3px; }
.legend span.t { cursor: default; }
.grid { display: grid; gap: 24px; align-items: start; margin-top: 12px; }
.summary { margin: 0 0 6px; color: #444; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #c62828; font-weight: 600; }
.step { display: flex; align-items: center; white-space: nowrap; height: 22px; }
.step.final { margin-top: 6px; border-top: 1px solid #999; padding-top: 4px; height: 26px; }
.meta { display: inline-block; width: 150px; color: #555; font-size: 11px; }
.meta.judged { color: #8a4b00; }
.t { position: relative; display: inline-block; min-width: 13px; padding: 0 1px;
     margin-right: 1px; text-align: center; font: 12px/18px ui-monospace, monospace;
     border: 1px solid transparent; border-radius: 2px; }
.t.mask { color: #aaa; }
.t.commit { border-color: #222; font-weight: 700; }
.t.edit { border-color: #7b1fa2; border-width: 2px; font-weight: 700; }
.t.remask { color: #c62828; text-decoration: line-through; border-color: #c62828;
            background: #fff0f0 !important; }
.t.remask sup { font-size: 8px; text-decoration: none; display: inline-block; }
.t.fill { color: #999; font-style: italic; }
.t.boundary { margin-left: 6px; }
.t.hl { outline: 2px solid #1565c0; }
#tip { position: fixed; display: none; z-index: 10; white-space: pre; pointer-events: none;
       font: 11px/1.35 ui-monospace, monospace; background: #fffde7; color: #222;
       border: 1px solid #999; padding: 4px 6px; box-shadow: 0 1px 4px rgba(0, 0, 0, .2); }
"""

# the hover box (kept inside the window), and the hovered position highlighted in every row of
# its decoder's column
SCRIPT = """
var tip = document.getElementById('tip');
document.querySelectorAll('.decoder').forEach(function (col) {
  col.addEventListener('mouseover', function (e) {
    var t = e.target.closest('.t'); if (!t) return;
    col.querySelectorAll('.t[data-pos="' + t.dataset.pos + '"]').forEach(function (c) {
      c.classList.add('hl'); });
    tip.textContent = t.dataset.tip; tip.style.display = 'block';
    var r = t.getBoundingClientRect(), w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(r.left, window.innerWidth - w - 4)) + 'px';
    tip.style.top = (r.bottom + h + 4 > window.innerHeight ? r.top - h - 4 : r.bottom + 4) + 'px';
  });
  col.addEventListener('mouseout', function () {
    col.querySelectorAll('.t.hl').forEach(function (c) { c.classList.remove('hl'); });
    tip.style.display = 'none';
  });
});
"""


def step_colour(step: int | None, last: int) -> str | None:
    """The background of a token committed at `step` of `last` steps: blue (early) to red."""
    if step is None:
        return None
    hue = 230 - 230 * step / max(last, 1)
    return f"hsl({hue:.0f}, 70%, 82%)"


def cell_html(cell: Cell, last: int, block_starts: set[int]) -> str:
    """One token as a span (its data attributes are what the browser test reads)."""
    classes = ["t", cell.kind] + (["boundary"] if cell.pos in block_starts else [])
    colour = step_colour(cell.born, last)
    attrs = {
        "class": " ".join(classes),
        "data-pos": str(cell.pos),
        "data-tok": str(cell.token),
        "data-kind": cell.kind,
        "data-tip": cell.tip,
    }
    if cell.born is not None:
        attrs["data-born"] = str(cell.born)
    if colour:
        attrs["style"] = f"background:{colour}"
    body = html.escape(cell.text)
    if cell.kind == "remask":
        score = "-" if cell.score is None else f"{cell.score:.2f}"
        attrs["data-score"] = score
        body += f"<sup>{score}</sup>"
    inner = " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    return f"<span {inner}>{body}</span>"


def row_html(row: Row, last: int, block_starts: set[int]) -> str:
    """One step (or the final response) as a line of tokens behind its label."""
    rec = row.record
    judged = row.step is not None and (rec.get("judged") or rec.get("final_check"))
    meta = f'<span class="meta{" judged" if judged else ""}">{html.escape(row.label)}</span>'
    cells = "".join(cell_html(c, last, block_starts) for c in row.cells)
    kind = "step" if row.step is not None else "step final"
    step = "final" if row.step is None else str(row.step)
    return f'<div class="{kind}" data-step="{step}" data-nfe="{row.nfe}">{meta}{cells}</div>'


def summary_html(trace: DecoderTrace) -> str:
    """Answer, verdict and counts of one decoder."""
    res = trace.result
    verdict = ""
    if res.get("correct") is not None:
        mark, css = ("right", "ok") if res["correct"] else ("wrong", "bad")
        verdict = (
            f" answer <code>{html.escape(str(res.get('extracted')))}</code>"
            f' <span class="{css}">{mark}</span> ·'
        )
    return (
        f'<p class="summary">{verdict} NFE {res["nfe"]} · {res["remasks"]} remasks · '
        f"{res['edits']} edits · {len(trace.steps)} steps</p>"
    )


def decoder_html(trace: DecoderTrace, last: int) -> str:
    """One decoder's column."""
    head = trace.header
    starts = set(range(head["block_length"], head["gen_length"], head["block_length"]))
    name = html.escape(trace.label)
    lines = [
        f'<section class="decoder" data-decoder="{html.escape(trace.label, quote=True)}">',
        f"<h2>{name}</h2>",
        f'<p class="summary">{html.escape(head["name"])}, k = {head["tokens_per_step"]}</p>',
        summary_html(trace),
        *(row_html(r, last, starts) for r in trace.rows),
        "</section>",
    ]
    return "\n".join(lines)


def legend_html(last: int) -> str:
    """What the marks mean."""
    early, late = step_colour(0, last), step_colour(last, last)
    return (
        '<p class="legend">colour: the step that committed a token (<span class="t" '
        f'style="background:{early}">early</span> to <span class="t" style="background:{late}">'
        'late</span>) · <span class="t mask">·</span> mask · <span class="t commit">x</span> '
        'committed this step · <span class="t remask">x<sup>0.83</sup></span> remasked this '
        'step, with the head\'s error probability · <span class="t edit">x</span> edited · '
        '<span class="t fill">∎</span> EoS filled by the early stop · hover a token for its '
        "proposals</p>"
    )


def render_page(traces: list[DecoderTrace], title: str) -> str:
    """The whole page for the decoders of one problem."""
    first = traces[0].header
    last = max((r.step for t in traces for r in t.steps), default=0)
    answer = first.get("answer")
    about = f"prompt <code>{html.escape(first['prompt'])}</code>"
    if answer is not None:
        about += f" · gold answer <code>{html.escape(str(answer))}</code>"
    columns = f"grid-template-columns: repeat({len(traces)}, max-content)"
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{about}</p>",
            legend_html(last),
            f'<div class="grid" style="{columns}">',
            *(decoder_html(t, last) for t in traces),
            "</div>",
            '<div id="tip"></div>',
            f"<script>{SCRIPT}</script>",
            "</body></html>",
        ]
    )


def write_page(path: Path, traces: list[DecoderTrace], title: str) -> Path:
    """Write the page for `traces` to `path`."""
    path.write_text(render_page(traces, title), encoding="utf-8")
    return path
