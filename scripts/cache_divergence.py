"""Where a key/value cache changes a model's predictions: cached vs exact, step by step.

    python scripts/cache_divergence.py +experiment=quickstart sampler.tokens_per_step=2 \
        benchmark.seed=4321 benchmark.n_problems=256 [seed=1] [--cache prefix]

Decodes the config's problems with confidence commits (k per step, greedy) on the exact
trajectory: every step runs the full forward, which decides the commits, and the cached forward
of the same canvas, which reads the record the block's first step made (`dual`: the block is
recomputed, everything else read from the record; `prefix`: the block to the end of the canvas
is recomputed). Over the block's positions still masked it prints, per block and step, the mean
total-variation distance between the two predictive distributions and the share of positions
whose proposed token differs. A cache that suits a model stays near 0 at every step; a spike
says at which step (and so for which tokens) the model reads context that the record holds stale.
Uses the stages of the config (trained first if missing), on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from backplay_exp.backbones.base import Backbone
from backplay_exp.data.collate import encode_prompts
from backplay_exp.samplers.select import propose_tokens, select_top
from backplay_exp.tasks.models import decoding_model
from backplay_exp.transformer.kv_cache import KVCache

CONF = Path(__file__).resolve().parents[1] / "conf"


@torch.no_grad()
def divergence(
    backbone: Backbone,
    ids: torch.Tensor,
    mask: torch.Tensor,
    gen_length: int,
    block_length: int,
    k: int,
    cache: str = "dual",
    fresh: bool = False,
) -> list[dict[str, float]]:
    """One record per cached step: block start, step, masks left, TV, share of argmax changes.

    Args:
        backbone: A backbone with a key/value cache (`Backbone.decode(..., cache)`).
        ids: (B, P) left-padded prompts.
        mask: (B, P) bool, real prompt tokens.
        gen_length: Response length.
        block_length: Block length.
        k: Tokens committed per step.
        cache: `dual` or `prefix` (what a cached step recomputes).
        fresh: Record anew before every cached forward (a check: every divergence is then 0).
    """
    if cache not in ("dual", "prefix"):
        raise ValueError(f"--cache is dual or prefix, not {cache!r}")
    b, p = ids.shape
    x = torch.cat([ids, torch.full((b, gen_length), backbone.mask_id)], 1)  # (B, T)
    attn = torch.cat([mask.bool(), torch.ones(b, gen_length, dtype=torch.bool)], 1)
    rows = []
    for lo in range(p, p + gen_length, block_length):
        hi = min(lo + block_length, p + gen_length)
        kv = KVCache()
        logits = backbone.decode(x, attn, (lo, hi), kv.record()).logits  # (B, n, V)
        for step in range(1, -(-(hi - lo) // k)):
            masked = x[:, lo:hi] == backbone.mask_id  # (B, n)
            x_hat, conf = propose_tokens(logits, 0.0, None, backbone.mask_id)
            commit = select_top(conf, masked, torch.full((b,), k))  # (B, n)
            x[:, lo:hi] = torch.where(commit, x_hat, x[:, lo:hi])
            exact = backbone.decode(x, attn, (lo, hi)).logits
            if fresh:
                backbone.decode(x, attn, (lo, hi), kv.record())
            span = kv.span(lo, hi if cache == "dual" else None)
            cached = backbone.decode(x, attn, (lo, hi), span).logits
            left = x[:, lo:hi] == backbone.mask_id  # (B, n)
            p_exact, p_cached = exact.float().softmax(-1), cached.float().softmax(-1)
            tv = 0.5 * (p_exact - p_cached).abs().sum(-1)[left]  # (m,)
            differs = (exact.argmax(-1) != cached.argmax(-1))[left].float()
            rows.append(
                {
                    "block": lo - p,
                    "step": step,
                    "masks_left": left.sum(-1).float().mean().item(),
                    "tv": tv.mean().item(),
                    "argmax_differs": differs.mean().item(),
                }
            )
            logits = exact  # the exact trajectory decides the next commits
    return rows


def main() -> None:
    """Decode the config's problems and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default="dual", choices=("dual", "prefix"))
    args, overrides = parser.parse_known_args()
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("config", overrides=overrides)
    backbone, _, _ = decoding_model(cfg, False)
    backbone.eval()
    bench = instantiate(cfg.benchmark)
    bench.use_tokenizer(backbone.tokenizer)
    ids, mask = encode_prompts(backbone.tokenizer, [q.prompt for q in bench.problems()])
    k = int(cfg.sampler.tokens_per_step)
    rows = divergence(
        backbone, ids, mask, cfg.sampler.gen_length, cfg.sampler.block_length, k, args.cache
    )
    print(f"{args.cache} cache vs exact, k={k}, {len(ids)} problems, seed {cfg.seed}")
    print("| block | step | masks left | TV | proposal differs |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['block']} | {r['step']} | {r['masks_left']:.1f} | {r['tv']:.4f} "
            f"| {100 * r['argmax_differs']:.1f}% |"
        )


if __name__ == "__main__":
    sys.exit(main())
