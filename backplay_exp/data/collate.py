"""Tokenisation of SFT pairs and of generation prompts.

SFT (METHOD.md section 2): `prompt + response`, the response padded with EoS to `response_len`
(LLaDA pads to the max length with EoS; the EoS rule decides which of them carry loss).
Generation: prompts are left-padded with attention masks so that rows of a batch line up.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase


def token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (one batched tokenizer call).

    A fast tokenizer is called through its Rust backend: transformers' wrapper converts each
    encoding to Python objects first, 40% of the toy's 100k-problem encoding time (measured).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None) if tokenizer.is_fast else None
    if backend is None:
        return tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]


def encode_sft_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    response_len: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode (prompt, response) pairs for SFT.

    Each row is `prompt + response + EoS...` with the response part exactly `response_len` long;
    rows are then right-padded with EoS to the longest prompt of the batch.

    Returns:
        `input_ids` (N, T) long and `response_mask` (N, T) bool.

    Raises:
        ValueError: naming the first response longer than `response_len`.
    """
    eos = tokenizer.eos_token_id
    p_ids, r_ids = token_ids(tokenizer, prompts), token_ids(tokenizer, responses)
    p_len = np.fromiter(map(len, p_ids), dtype=np.int64, count=len(p_ids))
    r_len = np.fromiter(map(len, r_ids), dtype=np.int64, count=len(r_ids))
    if (too_long := np.flatnonzero(r_len > response_len)).size:
        i = int(too_long[0])
        raise ValueError(
            f"SFT example {i}: response has {r_len[i]} tokens > response_len={response_len}; "
            "raise the response length or filter long examples"
        )
    width = int(p_len.max()) + response_len
    ids = np.full((len(p_ids), width), eos, dtype=np.int64)
    # scatter the concatenated prompt + response tokens of every row in one assignment
    row_len = p_len + r_len
    rows = np.repeat(np.arange(len(p_ids)), row_len)
    starts = np.repeat(np.cumsum(row_len) - row_len, row_len)
    cols = np.arange(len(rows)) - starts
    ids[rows, cols] = np.fromiter(
        itertools.chain.from_iterable(
            itertools.chain(p, r) for p, r in zip(p_ids, r_ids, strict=True)
        ),
        dtype=np.int64,
        count=len(rows),
    )
    response = np.arange(width)[None, :] >= p_len[:, None]
    return torch.from_numpy(ids), torch.from_numpy(response)


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad prompts: `prompt_ids` (N, P) long and `prompt_mask` (N, P) bool."""
    p_ids = token_ids(tokenizer, prompts)
    width = max(len(p) for p in p_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(p_ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(p_ids), width), dtype=torch.bool)
    for i, p in enumerate(p_ids):
        if not p:
            raise ValueError(f"prompt {i} is empty")
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = True
    return ids, mask


def response_texts(
    tokenizer: PreTrainedTokenizerBase, tokens: torch.Tensor, eos_id: int
) -> tuple[list[str], torch.Tensor]:
    """The decoded responses, each up to its first EoS, and their lengths in tokens.

    Args:
        tokenizer: Decodes the tokens (special tokens skipped).
        tokens: (B, gen_length) long response canvases.
        eos_id: End-of-sequence id; a row without one is read to its end.

    Returns:
        The texts and `lengths` (B,) long, tokens before the first EoS.
    """
    tokens = tokens.cpu()
    is_eos = tokens == eos_id
    lengths = torch.where(is_eos.any(-1), is_eos.int().argmax(-1), tokens.shape[1])  # (B,)
    texts = [
        tokenizer.decode(row[:n], skip_special_tokens=True)
        for row, n in zip(tokens, lengths, strict=True)
    ]
    return texts, lengths
