"""Side-by-side cost measurements behind the BackPlay performance claims (issue 4, item 4).

1. A head-only training step vs a joint step on the same backbone and batch (artifact
   generation included in both: it is part of every step).
2. Per-step decoding time of BackPlay vs confidence decoding at the same k on the same
   problems (wall time / forward passes, so more or fewer steps do not bias the ratio).

Weights are random unless `--trained` (costs do not depend on them). Any config override
applies, e.g. a bigger backbone: `python scripts/perf.py backbone.d_model=512 backbone.n_layers=8`.
Prints a JSON record; `--out FILE` also writes it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from backplay_exp.data.collate import encode_prompts
from backplay_exp.samplers.decoder import Decoder

CONF = Path(__file__).resolve().parents[1] / "conf"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    """Wall seconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def train_step_times(cfg, batch, repeats: int) -> dict[str, float]:
    """Median seconds of one optimiser step: head-only vs joint, same backbone and batch."""
    backbone = instantiate(cfg.backbone)
    out = {}
    for kind, recipe in (("head_only", cfg.head_train), ("joint", cfg.joint)):
        torch.manual_seed(cfg.seed)
        head = instantiate(OmegaConf.merge(cfg.head, {"d_in": backbone.hidden_size}))
        module = instantiate(
            recipe.module, backbone=backbone, head=head, artifact=instantiate(cfg.artifact)
        )
        module.log = lambda *a, **k: None  # no trainer attached
        module.train()
        params = list(module.trainable_parameters())
        opt = torch.optim.AdamW(params, lr=1e-4)

        def step(module=module, opt=opt):
            loss = module.training_step(batch, 0)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        out[f"{kind}_step_s"] = statistics.median(timed(step, repeats))
        out[f"{kind}_trainable_params"] = sum(p.numel() for p in params)
    out["joint_over_head_step"] = out["joint_step_s"] / out["head_only_step_s"]
    return out


def decode_step_times(cfg, trained: bool, repeats: int) -> dict[str, float]:
    """Seconds per forward pass of confidence vs BackPlay decoding (same problems and k)."""
    benchmark = instantiate(cfg.benchmark)
    problems = benchmark.problems()[: cfg.task.batch_size]
    if trained:
        from backplay_exp.tasks.models import decoding_model

        backbone, head, _ = decoding_model(OmegaConf.merge(cfg, {"model": "head"}), True)
    else:
        backbone = instantiate(cfg.backbone)
        head = instantiate(OmegaConf.merge(cfg.head, {"d_in": backbone.hidden_size}))
    backbone.eval(), head.eval()
    ids, mask = encode_prompts(backbone.tokenizer, [p.prompt for p in problems])
    calls = {"n": 0}
    decode = backbone.decode  # every decoding forward goes through it

    def counting_decode(*args, **kwargs):
        calls["n"] += 1
        return decode(*args, **kwargs)

    backbone.decode = counting_decode
    out = {}
    for name in ("confidence", "backplay"):
        remask = OmegaConf.load(CONF / "remask" / f"{name}.yaml")
        decoder: Decoder = instantiate(cfg.sampler, remasker=instantiate(remask))
        per_step = []
        for _ in range(repeats):
            calls["n"] = 0
            start = time.perf_counter()
            result = decoder.generate(backbone, ids, mask, head, torch.Generator().manual_seed(0))
            per_step.append((time.perf_counter() - start) / calls["n"])
        out[f"{name}_step_s"] = statistics.median(per_step)
        out[f"{name}_forwards"] = calls["n"]
        out[f"{name}_remasks_mean"] = result.remasks.float().mean().item()
    out["backplay_over_confidence_step"] = out["backplay_step_s"] / out["confidence_step_s"]
    return out


def main() -> None:
    """Parse arguments, compose the config, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--trained", action="store_true", help="decode with the cached stages")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--only",
        choices=("train", "decode"),
        help="measure one half (decoding a big backbone is slow)",
    )
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("config", overrides=args.overrides)
    backbone_cfg = OmegaConf.to_container(cfg.backbone, resolve=True)
    data = instantiate(cfg.data, tokenizer=instantiate(cfg.backbone).tokenizer)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    record = {
        "overrides": args.overrides,
        "backbone": {k: v for k, v in backbone_cfg.items() if k != "tokenizer"},
        "batch_size": len(batch["input_ids"]),
        "threads": torch.get_num_threads(),
    }
    if args.only != "decode":
        record |= train_step_times(cfg, batch, args.repeats)
    if args.only != "train":
        record["tokens_per_step"] = cfg.sampler.tokens_per_step
        record |= decode_step_times(cfg, args.trained, args.repeats)
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
