"""lm-eval generation requests mapped onto the decoder: canvas length, stop strings, batches.

A diffusion LM does not stop left to right: it fills a canvas of whole blocks. A request's
`max_gen_toks` becomes the canvas, rounded up to whole blocks of the decoder's `block_length`
(a request without one gets the configured `gen_length`). The response is read up to its first
EoS and then cut at the first of the request's `until` strings (EVALUATION.md: cut first, then
extract). Requests are decoded in their given order, in fixed batches of one canvas length, so
batch `i` of a canvas is decoded with the same seed as batch `i` of `task=eval`.
"""

from __future__ import annotations

from collections.abc import Sequence


def canvas_length(max_gen_toks: int | None, default: int, block_length: int) -> int:
    """Response canvas for a request: `max_gen_toks` rounded up to whole blocks.

    Args:
        max_gen_toks: The request's token budget (None: the configured canvas).
        default: The configured `gen_length`.
        block_length: The decoder's block length.

    Raises:
        ValueError: for a budget below one token.
    """
    if max_gen_toks is None:
        return default
    if int(max_gen_toks) < 1:
        raise ValueError(f"max_gen_toks must be >= 1, got {max_gen_toks}")
    return -(-int(max_gen_toks) // block_length) * block_length


def cut_at_stops(text: str, until: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop string (all of it if none occurs)."""
    ends = [i for stop in until if stop and (i := text.find(stop)) >= 0]
    return text[: min(ends)] if ends else text


def stop_strings(gen_kwargs: dict) -> list[str]:
    """The request's `until` as a list (lm-eval allows one string or a list)."""
    until = gen_kwargs.get("until") or []
    return [until] if isinstance(until, str) else list(until)


def batches_by_canvas(canvases: Sequence[int], batch_size: int) -> list[tuple[int, int, list[int]]]:
    """Requests grouped by canvas length, in order, cut into batches.

    Args:
        canvases: Canvas length of each request.
        batch_size: Requests per batch.

    Returns:
        `(canvas, batch index within that canvas, request indices)` per batch, the canvases in
        the order they first occur.
    """
    groups: dict[int, list[int]] = {}
    for index, canvas in enumerate(canvases):
        groups.setdefault(canvas, []).append(index)
    return [
        (canvas, b, members[start : start + batch_size])
        for canvas, members in groups.items()
        for b, start in enumerate(range(0, len(members), batch_size))
    ]
