"""The trace recorder: what a decode did, step by step (docs/decoding.md, "Reading a trace").

The decoder drives a recorder through four calls: `head(head)` once per decode (the head the
remasker calls), `forward(state, rows, kv, window, logits)` after each step's forward pass,
`step(state, step, commit, remask, edit)` after the step's decisions are applied, and
`done(result)` with what the decode returns (the early stop's EoS filled in).

- `NoTrace` (the default, `Decoder.generate(..., trace=None)`): every call returns at once; the
  decode is the same code path and the same tokens.
- `TraceRecorder`: one JSON-ready dict per row and step (`records`): the response positions
  committed, remasked (with the head's error probability and the token it replaced) and edited,
  the proposals and confidences there, the block, whether the step judged, what the forward
  computed, and the response after the step. Positions are response positions (0 = the first
  generated token; negative ones, in `forward`, are prompt positions). It loops over the
  recorded rows: it is for a few problems, not for a benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from backplay_exp.samplers.state import DecodeResult, DecodeState, Head, Step
from backplay_exp.transformer.kv_cache import KVCache


class NoTrace:
    """Records nothing: the decoder's default (its methods return at once)."""

    def head(self, head: Head | None) -> Head | None:
        """The head the remasker calls: `head` itself."""
        return head

    def forward(
        self,
        state: DecodeState,
        rows: torch.Tensor,
        kv: KVCache | None,
        window: tuple[int, int] | torch.Tensor,
        logits: torch.Tensor,
    ) -> None:
        """A step's forward pass ran (see `TraceRecorder.forward`): nothing to keep."""

    def step(
        self,
        state: DecodeState,
        step: Step,
        commit: torch.Tensor,
        remask: torch.Tensor,
        edit: torch.Tensor,
    ) -> None:
        """A step's decisions were applied (see `TraceRecorder.step`): nothing to keep."""

    def done(self, result: DecodeResult) -> DecodeResult:
        """The decode's result, returned as it is."""
        return result


class TracedHead:
    """`head`, whose error probabilities of each call the recorder keeps (same outputs)."""

    def __init__(self, head: Head, recorder: TraceRecorder) -> None:
        self.inner, self.recorder = head, recorder

    def __call__(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The head's correctness logits (b, T); their error probabilities are recorded."""
        logits = self.inner(hidden, attention_mask)
        self.recorder.err = 1 - torch.sigmoid(logits.float())  # (b, T), as HeadRemasker reads it
        return logits


def forward_kind(kv: KVCache | None, length: int, prompt_len: int) -> dict[str, Any]:
    """What a step's forward computed, in response positions (the prompt's are negative).

    `full`: a plain forward of the whole sequence; `record`: a full forward that recorded the
    cache; `span`: positions [lo, hi) against the record; `positions`: a sorted set of them.
    """
    if kv is None or kv.recording:
        return {"kind": "full" if kv is None else "record", "computed": length}
    cols = kv.positions(length)
    if isinstance(cols, slice):
        lo, hi = cols.start - prompt_len, cols.stop - prompt_len
        return {"kind": "span", "lo": lo, "hi": hi, "computed": hi - lo}
    positions = (cols - prompt_len).tolist()
    return {"kind": "positions", "positions": positions, "computed": len(positions)}


class TraceRecorder(NoTrace):
    """Keep one record per row and step (see module doc; the schema is docs/decoding.md's).

    Args:
        top: Proposals kept (token, probability) at each changed position, most likely first.
        rows: Batch rows to record (None: every row).
    """

    def __init__(self, top: int = 3, rows: Sequence[int] | None = None) -> None:
        if top < 1:
            raise ValueError(f"a trace keeps at least the top proposal, not top={top}")
        self.top, self.rows = top, None if rows is None else set(rows)
        self.records: list[dict[str, Any]] = []  # one per recorded row and step
        self.results: dict[int, dict[str, Any]] = {}  # row -> its response and counts
        self.err: torch.Tensor | None = None  # (b, T) the head's error probabilities this step
        self._forward: dict[str, Any] = {}
        # recorded row -> (T, n) top ids and probabilities this step; (T,) bool: got logits
        self._top: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._inside: torch.Tensor | None = None
        self._blocks: dict[int, int] = {}  # block start -> index

    def head(self, head: Head | None) -> Head | None:
        """The head, wrapped so that its error probabilities are recorded."""
        return None if head is None else TracedHead(head, self)

    def forward(
        self,
        state: DecodeState,
        rows: torch.Tensor,
        kv: KVCache | None,
        window: tuple[int, int] | torch.Tensor,
        logits: torch.Tensor,
    ) -> None:
        """Keep what the forward computed and, for the recorded rows, its top proposals.

        Args:
            state: The batch.
            rows: (b,) the step's batch rows.
            kv: The step's cache (None: a plain forward), as the forward left it.
            window: The positions that got logits, [lo, hi) or a sorted (W,) tensor.
            logits: (b, W, V) at the window's positions.
        """
        self.err = None  # the head has not judged this step yet
        length = state.x.shape[1]
        self._forward = forward_kind(kv, length, state.prompt_len)
        cols = slice(*window) if isinstance(window, tuple) else window
        self._inside = torch.zeros(length, dtype=torch.bool, device=logits.device)
        self._inside[cols] = True
        self._top = {}
        for i, row in enumerate(rows.tolist()):
            if self.rows is not None and row not in self.rows:
                continue
            mine = logits[i].float()  # (W, V)
            top, ids = mine.topk(self.top, -1)  # (W, n)
            probs = (top - mine.logsumexp(-1, keepdim=True)).exp()  # softmax at the top n
            top_ids = ids.new_zeros((length, self.top))
            top_p = probs.new_zeros((length, self.top))
            top_ids[cols], top_p[cols] = ids, probs
            self._top[row] = (top_ids, top_p)  # (T, n) each

    def step(
        self,
        state: DecodeState,
        step: Step,
        commit: torch.Tensor,
        remask: torch.Tensor,
        edit: torch.Tensor,
    ) -> None:
        """Keep one record per recorded row of the step (all masks (b, T) bool)."""
        block = self._blocks.setdefault(state.lo, len(self._blocks))
        p = state.prompt_len
        for i, row in enumerate(step.rows.tolist()):
            if self.rows is not None and row not in self.rows:
                continue
            changed = (commit[i] | remask[i] | edit[i]).nonzero().squeeze(1).tolist()
            proposals = {q: self._proposals(step, i, row, q) for q in changed}
            err = None if self.err is None else self.err[i]
            record = {
                "row": row,
                "step": int(step.step[i]),
                "nfe": int(state.nfe[row]),
                "block": block,
                "block_span": [state.lo - p, state.hi - p],
                "in_block": int(step.in_block[i]),
                "judged": bool(step.due[i]),
                "final_check": bool(state.judge[row]) if state.judge is not None else False,
                "forward": self._forward,
                "commits": [
                    {"pos": q - p, "token": int(step.x_hat[i, q]), **proposals[q]}
                    for q in commit[i].nonzero().squeeze(1).tolist()
                ],
                "remasks": [
                    {
                        "pos": q - p,
                        "token": int(step.x[i, q]),
                        "score": None if err is None else round(float(err[q]), 4),
                        **proposals[q],
                    }
                    for q in remask[i].nonzero().squeeze(1).tolist()
                ],
                "edits": [
                    {"pos": q - p, "old": int(step.x[i, q]), "new": int(step.x_hat[i, q])}
                    | proposals[q]
                    for q in edit[i].nonzero().squeeze(1).tolist()
                ],
                "scores": self._scores(i, step, err, p),
                "canvas": state.x[row, p:].tolist(),
            }
            self.records.append(record)

    def done(self, result: DecodeResult) -> DecodeResult:
        """Keep each recorded row's response (`tokens`) and counts; return `result`."""
        for row in range(len(result.tokens)):
            if self.rows is None or row in self.rows:
                self.results[row] = {
                    "tokens": result.tokens[row].tolist(),
                    "nfe": int(result.nfe[row]),
                    "remasks": int(result.remasks[row]),
                    "edits": int(result.edits[row]),
                }
        return result

    def steps_of(self, row: int) -> list[dict[str, Any]]:
        """The records of batch row `row`, in step order."""
        return [r for r in self.records if r["row"] == row]

    def _proposals(self, step: Step, i: int, row: int, q: int) -> dict[str, Any]:
        """The proposal at sequence position `q` of the step's row `i` (batch row `row`).

        Its confidence (the decoder's `conf`) and the top proposals `[[token, probability],
        ...]`: none where the step computed no logits (a look-back position that a lazy cache
        read from its record).
        """
        assert self._inside is not None, "forward() comes before step()"
        ids, probs = self._top[row]
        pairs = zip(ids[q].tolist(), probs[q].tolist(), strict=True)
        top = [[t, round(c, 4)] for t, c in pairs] if bool(self._inside[q]) else []
        return {"conf": round(float(step.conf[i, q]), 4), "top": top}

    def _scores(
        self, i: int, step: Step, err: torch.Tensor | None, p: int
    ) -> list[list[float | int]]:
        """[[pos, error probability], ...] of the committed window tokens the head judged."""
        if err is None or not bool(step.due[i]):
            return []
        cols = step.committed[i].nonzero().squeeze(1).tolist()
        return [[q - p, round(float(err[q]), 4)] for q in cols]
