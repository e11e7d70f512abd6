"""Pure tensor steps of the denoising loop: propose, rank, pick the top-n per row, widen.

`widen` puts a window's proposals back onto the whole sequence.

METHOD.md section 6: candidate `x̂_i = argmax(logits_i + temperature * Gumbel)` (LLaDA's float64
form `exp(logits) / (-log u)^temperature`), confidence `c_i = softmax(logits_i)[x̂_i]` from the
un-noised logits.
"""

from __future__ import annotations

import torch


def propose_tokens(
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None = None,
    mask_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate token and its confidence at every position.

    Args:
        logits: (B, L, V).
        temperature: 0 gives the argmax; > 0 adds Gumbel noise in float64 as LLaDA does.
        generator: Randomness for the noise (None = the global generator, as LLaDA).
        mask_id: Never proposed (a committed mask would stay masked and a block would never
            finish; an untrained model's argmax can be the mask). Its probability still counts
            in the confidence, so a trained model, which never proposes it, decodes as in LLaDA.

    Returns:
        `x_hat` (B, L) long and `confidence` (B, L) float64.
    """
    assert logits.ndim == 3
    logits64 = logits.to(torch.float64, copy=True)  # ours: the mask is written into it below
    probs = torch.softmax(logits64, dim=-1)  # (B, L, V), the mask's mass included
    scores = logits64
    if temperature > 0:
        u = torch.rand(
            logits64.shape, dtype=torch.float64, generator=generator, device=logits.device
        )  # (B, L, V)
        scores = logits64.exp() / (-torch.log(u)) ** temperature
    if mask_id is not None:
        scores[..., mask_id] = float("-inf")  # in place: no extra (B, L, V) copy
    x_hat = scores.argmax(-1)  # (B, L)
    confidence = probs.gather(-1, x_hat[..., None]).squeeze(-1)
    return x_hat, confidence


def select_top(
    scores: torch.Tensor, candidates: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Pick, in each row, the `counts[b]` candidates with the highest scores.

    Args:
        scores: (B, L) float; higher is picked first.
        candidates: (B, L) bool, the positions that may be picked.
        counts: (B,) long, how many to pick per row (clipped to the candidates available).

    Returns:
        (B, L) bool selection.
    """
    assert scores.shape == candidates.shape and counts.shape == scores.shape[:1]
    counts = torch.minimum(counts, candidates.sum(-1))  # (B,)
    k = int(counts.max().item()) if counts.numel() else 0
    selected = torch.zeros_like(candidates)
    if k == 0:
        return selected
    masked = scores.masked_fill(~candidates, float("-inf"))  # (B, L)
    idx = masked.topk(k, dim=-1).indices  # (B, k)
    keep = torch.arange(k, device=scores.device)[None, :] < counts[:, None]  # (B, k)
    return selected.scatter(1, idx, keep)


def widen(
    x_hat: torch.Tensor,
    confidence: torch.Tensor,
    x: torch.Tensor,
    window: tuple[int, int] | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Window proposals (b, W) onto the whole sequence (b, T).

    `window` is [lo, hi) or a sorted (W,) tensor of positions. Outside it the proposal is the
    current token with confidence 0 (nothing there is a candidate: positions left of the window
    are committed, right of the block are not yet decoded).
    """
    cols = slice(*window) if isinstance(window, tuple) else window
    full_hat = x.clone()
    full_hat[:, cols] = x_hat
    full_conf = confidence.new_zeros(x.shape)
    full_conf[:, cols] = confidence
    return full_hat, full_conf
