"""The `trace.jsonl` schema: build it from a recorder's records, read it back as step rows.

docs/decoding.md ("Reading a trace") describes the file. One JSON object per line, every one
with `type` and `decoder` (the decoder's label, unique in the file):

- `decode`: one per decoder, first: what it is (`name`, `describe`, the overrides it was
  composed with), the problem (`problem`, `index`, `prompt`, `answer`), the geometry
  (`gen_length`, `block_length`, `tokens_per_step`), `mask_id`, `eos_id` and `vocab` (id -> text
  of every token the file names);
- `step`: one per decoding step of the traced row, as `recorder.TraceRecorder` records it;
- `result`: the response (`tokens`, `completion`), its score (`extracted`, `correct`: None
  without a gold answer) and its counts (`nfe`, `remasks`, `edits`).

`read_trace` turns a file into one `DecoderTrace` per decoder: a `Row` per step (and a final
one) of `Cell`s, one per response position, which the page and the figure draw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backplay_exp.backbones.base import Backbone
    from backplay_exp.samplers.decoder import Decoder

# how a token reads on the page and in the figure where its text would be invisible
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "": "∅"}
MASK_TEXT, EOS_TEXT = "·", "∎"


def token_ids_of(steps: Iterable[dict[str, Any]], tokens: Sequence[int]) -> set[int]:
    """Every token id the step records and the response name."""
    found = set(tokens)
    for s in steps:
        found.update(s["canvas"])
        for event in (*s["commits"], *s["remasks"], *s["edits"]):
            found.update(event.get(k) for k in ("token", "old", "new") if k in event)
            found.update(t for t, _ in event["top"])
    return found


def shown(text: str) -> str:
    """A token's text as the page shows it (whitespace made visible)."""
    if text in VISIBLE:
        return VISIBLE[text]
    return text.replace(" ", "␣").replace("\n", "⏎")


def decode_header(
    decoder: Decoder,
    backbone: Backbone,
    prompt: str,
    overrides: Sequence[str] = (),
    **problem: Any,
) -> dict[str, Any]:
    """The `decode` record's fields but `vocab`: the decoder, its geometry, the problem.

    Args:
        decoder: The traced decoder.
        backbone: Its backbone (mask and EoS ids).
        prompt: The prompt text.
        overrides: The config overrides the decoder was composed with.
        **problem: `problem` (id), `index`, `answer` and anything else to keep.
    """
    return {
        "name": decoder.name,
        "overrides": list(overrides),
        "describe": decoder.describe(),
        "tokens_per_step": decoder.tokens_per_step,
        "gen_length": decoder.gen_length,
        "block_length": decoder.block_length,
        "prompt": prompt,
        **problem,
        "mask_id": backbone.mask_id,
        "eos_id": backbone.eos_id,
    }


def trace_records(
    label: str,
    header: dict[str, Any],
    steps: list[dict[str, Any]],
    result: dict[str, Any],
    tokenizer: Any,
) -> list[dict[str, Any]]:
    """The lines of one decoder's trace: its `decode` header, `step`s and `result`.

    Args:
        label: The decoder's name in the file.
        header: The `decode` record's fields but `vocab` (see module doc).
        steps: The recorder's records of the traced row.
        result: The `result` record's fields.
        tokenizer: Gives each token id its text (`vocab`).
    """
    ids = sorted(token_ids_of(steps, result["tokens"]))
    vocab = {str(i): tokenizer.decode([i]) for i in ids}
    head = {"type": "decode", "decoder": label, **header, "vocab": vocab}
    return [
        head,
        *({"type": "step", "decoder": label, **s} for s in steps),
        {"type": "result", "decoder": label, **result},
    ]


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write `records` one JSON object per line."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@dataclass
class Cell:
    """One response position in one row of the trace.

    Attributes:
        pos: Response position. token: The token there after the row's step (id).
        text: What is shown. kind: `mask`, `kept` (committed earlier), `commit`, `remask`,
            `edit` (this step), or `fill` (early stop's EoS, final row only).
        born: The step that committed the token there (None: masked or filled).
        tip: The hover text. score: The head's error probability (remasks).
    """

    pos: int
    token: int
    text: str
    kind: str
    born: int | None
    tip: str
    score: float | None = None


@dataclass
class Row:
    """One step of a decoder (or its final response, `step` None) as a row of cells."""

    step: int | None
    nfe: int
    label: str
    cells: list[Cell]
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class DecoderTrace:
    """One decoder's trace: its header and result records and its rows (last: the result)."""

    label: str
    header: dict[str, Any]
    result: dict[str, Any]
    rows: list[Row]

    @property
    def steps(self) -> list[Row]:
        """The rows of decoding steps (without the final one)."""
        return self.rows[:-1]


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a `trace.jsonl`."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_trace(records: list[dict[str, Any]]) -> list[DecoderTrace]:
    """One `DecoderTrace` per decoder of the records, in the order they appear."""
    labels = list(dict.fromkeys(r["decoder"] for r in records))
    out = []
    for label in labels:
        mine = [r for r in records if r["decoder"] == label]
        (header,) = (r for r in mine if r["type"] == "decode")
        (result,) = (r for r in mine if r["type"] == "result")
        steps = [r for r in mine if r["type"] == "step"]
        out.append(DecoderTrace(label, header, result, rows(header, steps, result)))
    return out


def rows(header: dict[str, Any], steps: list[dict[str, Any]], result: dict[str, Any]) -> list[Row]:
    """The step rows and the final row of one decoder (see `Cell` for what each cell holds)."""
    text = TokenText(header)
    born: dict[int, int] = {}  # position -> the step that committed its token
    conf: dict[int, float] = {}  # position -> that commit's confidence
    out = []
    for n, s in enumerate(steps):
        events = {e["pos"]: ("commit", e) for e in s["commits"]}
        events |= {e["pos"]: ("edit", e) for e in s["edits"]}
        events |= {e["pos"]: ("remask", e) for e in s["remasks"]}
        scores = {int(p): v for p, v in s["scores"]}
        cells = []
        for pos, tok in enumerate(s["canvas"]):
            kind, event = events.get(pos, ("mask" if tok == header["mask_id"] else "kept", None))
            if kind in ("commit", "edit"):
                born[pos], conf[pos] = s["step"], event["conf"]
            elif kind == "remask":
                born.pop(pos, None)
            lines = [f"pos {pos}", *event_lines(kind, event, s["step"], steps[n + 1 :], text)]
            if kind in ("commit", "kept") and pos in born:
                lines.append(f"committed at step {born[pos]} (confidence {fmt(conf[pos])})")
            if pos in scores and kind != "remask":  # a remask's line names it already
                lines.append(f"head error {fmt(scores[pos])}")
            remasked = kind == "remask"
            cells.append(
                Cell(
                    pos, tok, text(event["token"] if remasked else tok), kind, born.get(pos),
                    "\n".join(lines), event["score"] if remasked else None,
                )
            )  # fmt: skip
        out.append(Row(s["step"], s["nfe"], step_label(s), cells, s))
    out.append(final_row(result, born, conf, text))
    return out


def event_lines(
    kind: str,
    event: dict[str, Any] | None,
    step: int,
    later: list[dict[str, Any]],
    text: TokenText,
) -> list[str]:
    """The hover lines of a remask or an edit at this step, and the step's proposals there."""
    lines = []
    if kind == "remask" and event is not None:
        lines.append(
            f"remasked at step {step}: {text(event['token'])!r}, head error {fmt(event['score'])}"
        )
        again = replacement(later, event["pos"])
        lines.append(
            f"replaced by {text(again[1])!r} at step {again[0]}" if again else "not committed again"
        )
    elif kind == "edit" and event is not None:
        lines.append(f"edited at step {step}: {text(event['old'])!r} -> {text(event['new'])!r}")
    if event is not None and event["top"]:
        lines.append("proposals: " + ", ".join(f"{text(t)!r} {c:.3f}" for t, c in event["top"]))
    return lines


def final_row(
    result: dict[str, Any],
    born: dict[int, int],
    conf: dict[int, float],
    text: TokenText,
) -> Row:
    """The response as returned: committed tokens, and the EoS an early stop filled in."""
    cells = []
    for pos, tok in enumerate(result["tokens"]):
        if pos in born:
            tip = f"pos {pos}\ncommitted at step {born[pos]} (confidence {fmt(conf[pos])})"
            cells.append(Cell(pos, tok, text(tok), "kept", born[pos], tip))
        else:
            tip = f"pos {pos}\nnever committed: the early stop filled it with EoS"
            cells.append(Cell(pos, tok, text(tok), "fill", None, tip))
    return Row(None, result["nfe"], "result", cells, result)


def replacement(later: list[dict[str, Any]], pos: int) -> tuple[int, int] | None:
    """(step, token) of the first later commit at `pos`, if any."""
    for s in later:
        for e in s["commits"]:
            if e["pos"] == pos:
                return s["step"], e["token"]
    return None


def step_label(s: dict[str, Any]) -> str:
    """`s4 b1 NFE 5` plus `judged` / `final check` where so."""
    label = f"s{s['step']} b{s['block']} NFE {s['nfe']}"
    return label + (" final check" if s["final_check"] else " judged" if s["judged"] else "")


def fmt(value: float | None) -> str:
    """A probability with three decimals (`-` if there is none)."""
    return "-" if value is None else f"{value:.3f}"


class TokenText:
    """Token id -> the text shown, from a `decode` header's `vocab` (mask and EoS as marks)."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.vocab, self.mask, self.eos = header["vocab"], header["mask_id"], header["eos_id"]

    def __call__(self, token: int) -> str:
        """The text of `token`."""
        if token == self.mask:
            return MASK_TEXT
        if token == self.eos:
            return EOS_TEXT
        return shown(self.vocab.get(str(token), f"<{token}>"))
