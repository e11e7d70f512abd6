r"""The masked-diffusion log-likelihood of a continuation: LLaDA's Monte Carlo estimate.

For a context c and a continuation x of L tokens (LLaDA, Nie et al. 2025, eq. (6) and App. B.6;
its eval_llada.py), one sample draws how many continuation tokens to mask, l ~ U{1..L}, and
which ones, a uniform random subset M of size l; the context is never masked. The sample's loss
is the masked cross-entropy scaled by L / l:

    loss = (L / l) * sum_{i in M} -log p(x_i | c, x with M masked)

and the estimate is minus the mean loss over `mc_num` samples. Its expectation is the ELBO,
a lower bound on log p(x | c) (the likelihood a masked diffusion model assigns); lm-eval's
multiple-choice tasks compare these numbers across choices.

The `mc_num` samples of one request are stratified in l: sample j masks
l_j = ((k - 1 + floor(j L / mc_num)) mod L) + 1 tokens with one k ~ U{1..L} per request, so each
l_j alone is uniform (the estimate stays unbiased) while the samples spread over the ratios
(LLaDA's rule rounds a linspace, which makes l_j non-uniform when a step ends in .5; this rule
shifts k by whole tokens). Rows of every request are batched `rows_per_pass` at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

# (tokens (N, T), attention mask (N, T), output window [lo, hi)) -> logits (N, hi - lo, V)
LogitsFn = Callable[[torch.Tensor, torch.Tensor, tuple[int, int]], torch.Tensor]


def stratified_counts(
    cont_len: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """How many continuation tokens each of `n` samples per request masks.

    Args:
        cont_len: (R,) long continuation lengths L_r >= 1.
        n: Samples per request (`mc_num`).
        generator: Draws k_r (CPU).

    Returns:
        (R, n) long in 1..L_r; each column is uniform on 1..L_r.
    """
    k = (torch.rand(len(cont_len), generator=generator) * cont_len).long()  # (R,) in 0..L-1
    offset = torch.arange(n)[None, :] * cont_len[:, None] // n  # (R, n) floor(j L / n)
    return (k[:, None] + offset) % cont_len[:, None] + 1


def sample_masks(
    cont_len: torch.Tensor,
    count: torch.Tensor,
    width: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Uniform random subsets: `count[i]` of the last `cont_len[i]` of `width` columns.

    Args:
        cont_len: (N,) long continuation lengths (<= width); the continuation is right-aligned.
        count: (N,) long masks per row, 1..cont_len.
        width: Columns of the window.
        generator: Draws the subsets (CPU).

    Returns:
        (N, width) bool, True at masked positions.
    """
    inside = torch.arange(width)[None, :] >= (width - cont_len)[:, None]  # (N, W)
    scores = torch.rand(len(cont_len), width, generator=generator)  # (N, W)
    scores = torch.where(inside, scores, 2.0)  # columns outside the continuation rank last
    rank = scores.argsort(-1).argsort(-1)  # (N, W) rank of each column
    return rank < count[:, None]


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`tokens` (R, T) long and `attention` (R, T) bool, sequences right-aligned."""
    width = max(len(s) for s in sequences)
    tokens = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros(len(sequences), width, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        if seq:
            tokens[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            attention[row, width - len(seq) :] = True
    return tokens, attention


def mc_loglikelihood(
    logits_fn: LogitsFn,
    sequences: Sequence[Sequence[int]],
    cont_len: Sequence[int],
    mask_id: int,
    pad_id: int,
    mc_num: int,
    rows_per_pass: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Monte Carlo ELBO of each continuation given its context (the module doc's estimate).

    Args:
        logits_fn: The backbone's forward (see `LogitsFn`).
        sequences: Context + continuation token ids of each request.
        cont_len: Continuation length of each request (>= 1, its last tokens).
        mask_id: The mask token.
        pad_id: Left padding (never attended to).
        mc_num: Samples per request.
        rows_per_pass: Rows (request samples) per forward pass.
        generator: CPU generator for the ratios and subsets.
        device: Where the forward passes run.

    Returns:
        (R,) float64 estimates of log p(continuation | context).
    """
    if mc_num < 1 or rows_per_pass < 1:
        raise ValueError(f"mc_num and rows_per_pass must be >= 1, got {mc_num}, {rows_per_pass}")
    lengths = torch.tensor(cont_len, dtype=torch.long)  # (R,)
    if (lengths < 1).any():
        raise ValueError("every continuation needs at least one token")
    tokens, attention = left_pad(sequences, pad_id)  # (R, T)
    seq_len = torch.tensor([len(s) for s in sequences])  # (R,)
    request = torch.arange(len(sequences)).repeat_interleave(mc_num)  # (R * n,)
    count = stratified_counts(lengths, mc_num, generator).flatten()  # (R * n,)
    total = torch.zeros(len(sequences), dtype=torch.float64)
    for start in range(0, len(request), rows_per_pass):
        rows, drawn = request[start : start + rows_per_pass], count[start : start + rows_per_pass]
        t, w = int(seq_len[rows].max()), int(lengths[rows].max())
        x, attn = tokens[rows, -t:], attention[rows, -t:]  # (b, t)
        masked = sample_masks(lengths[rows], drawn, w, generator)  # (b, w)
        noisy = x.clone()
        noisy[:, t - w :] = torch.where(masked, mask_id, x[:, t - w :])
        logits = logits_fn(noisy.to(device), attn.to(device), (t - w, t))  # (b, w, V)
        where = masked.to(device)
        nll = F.cross_entropy(
            logits[where].float(), x[:, t - w :].to(device)[where], reduction="none"
        )  # (masked tokens,)
        row_of = where.nonzero()[:, 0]  # row of each masked token
        loss = torch.zeros(len(rows), device=device).index_add_(0, row_of, nll)  # (b,)
        scaled = loss.double().cpu() * lengths[rows] / drawn  # (b,) L / l weighting
        total.index_add_(0, rows, scaled)
    return -total / mc_num
