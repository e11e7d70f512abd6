"""An independent oracle of LLaDA's published sampler (ML-GSAI/LLaDA `generate.py`, MIT).

Written here from the algorithm, not copied: semi-autoregressive blocks, a fixed number of
steps per block, at each step the whole canvas is scored and the `n` most confident masked
positions of the current block are committed, `n` spreading the block's masks evenly over its
steps (the first `masks % steps` steps take one more). It draws its random numbers exactly as
the published code does (one float64 uniform per logit per step for Gumbel noise, one float32
uniform per position for `random` remasking), so `sampler=llada` must match it token for token.
"""

import torch


def _per_step_counts(block_masks: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps) tokens to commit at each step of a block holding `block_masks` (B, bl) masks."""
    total = block_masks.sum(-1, keepdim=True)  # (B, 1)
    extra = torch.arange(steps)[None, :] < total % steps  # (B, steps)
    return total // steps + extra.long()


def _noisy_argmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Gumbel-max in LLaDA's form: argmax of exp(logit) / (-log u) ** temperature, float64."""
    if not temperature:  # plain argmax
        return logits.argmax(-1)
    scaled = logits.double().exp()
    u = torch.rand_like(scaled)  # float64, like the logits
    return (scaled / (-u.log()) ** temperature).argmax(-1)


@torch.no_grad()
def generate(
    model,
    prompt,
    steps,
    gen_length,
    block_length,
    temperature=0.0,
    cfg_scale=0.0,
    remasking="low_confidence",
    mask_id=126336,
):
    """Decode `gen_length` tokens after `prompt` (1, P); returns the (1, P + gen_length) canvas."""
    if gen_length % block_length or steps % (gen_length // block_length):
        raise ValueError("gen_length must split into blocks, and steps evenly over them")
    if remasking not in ("low_confidence", "random"):
        raise ValueError(f"remasking={remasking!r}: low_confidence or random")
    n_prompt, n_blocks = prompt.shape[1], gen_length // block_length
    canvas = torch.cat([prompt, torch.full((1, gen_length), mask_id, dtype=torch.long)], dim=1)
    is_prompt = torch.zeros_like(canvas, dtype=torch.bool)
    is_prompt[:, :n_prompt] = True
    per_block = steps // n_blocks
    for b in range(n_blocks):
        lo, hi = n_prompt + b * block_length, n_prompt + (b + 1) * block_length
        counts = _per_step_counts(canvas[:, lo:hi] == mask_id, per_block)
        for s in range(per_block):
            masked = canvas == mask_id
            if cfg_scale > 0:
                unconditional = canvas.masked_fill(is_prompt, mask_id)
                cond, uncond = model(torch.cat([canvas, unconditional])).logits.chunk(2)
                logits = uncond + (cfg_scale + 1) * (cond - uncond)
            else:
                logits = model(canvas).logits
            guess = _noisy_argmax(logits, temperature)
            if remasking == "low_confidence":
                probs = logits.double().softmax(-1)
                score = probs.gather(-1, guess[..., None]).squeeze(-1)
            else:
                score = torch.rand(guess.shape)
            score = score.masked_fill(~masked, float("-inf"))
            score[:, hi:] = float("-inf")  # nothing right of the current block
            guess = torch.where(masked, guess, canvas)
            for row in range(canvas.shape[0]):
                picked = score[row].topk(int(counts[row, s])).indices
                canvas[row, picked] = guess[row, picked]
    return canvas
