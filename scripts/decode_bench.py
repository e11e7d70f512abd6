"""Decoding cost side by side: {no cache, prefix, dual, lazy} x {confidence, backplay}, step memory.

    python scripts/decode_bench.py                  # width 512, 8 blocks, vocab 32k; prompt 512,
                                                    # generation 256, block 32, k 2, batch 2
    python scripts/decode_bench.py --step-memory    # one step at LLaDA's vocabulary (126,464):
                                                    # windowed outputs vs the full-canvas path

A random model of LLaDA's architecture (`scripts/random_llada.py`), random prompts, and a
correction head in the paper's proportion to the backbone (`--head-width`); costs do not
depend on the weights, but for the lazy cache's `readers` (on by default), which recompute the
context positions whose first-layer attention reads what changed: a random model attends
almost uniformly, so they add no position here and cost only their check (a trained model's
cost is the toy's, docs/decoding.md). Each configuration runs in a fresh process, so that its
peak resident memory (VmHWM above the resident set before decoding) is its own. `backplay` is
the paper's preset (`conf/remask/backplay.yaml`); with a random head it remasks at random,
which is fine for cost. The head's share is the wall time inside the head over the whole
decode. `--repeats n` times each decode n times (the same decode) and reports the median.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import random_llada

CONF = random_llada.ROOT / "conf"
CACHES = ("none", "prefix", "dual", "lazy")
POLICIES = ("confidence", "backplay")


def status_kb(field: str) -> int:
    """A `/proc/self/status` field in kB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> int:
    """Reset VmHWM to the current resident set (Linux >= 4.0); return that, in bytes."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return status_kb("VmRSS") * 1024


def timed(fn, clock: dict[str, float]):
    """`fn` that adds its wall time to `clock['s']` and counts calls in `clock['n']`."""

    @functools.wraps(fn)  # keeps the signature (the lazy cache reads the head's)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        clock["s"] += time.perf_counter() - start
        clock["n"] += 1
        return out

    return wrapper


def count_window_steps(decoder) -> dict[str, int]:
    """Count the forwards that compute positions of the look-back window (left of the block).

    A full forward (no cache, or a recording one) computes them all; a cached one those of its
    positions left of the current block.
    """
    counter, step = {"n": 0}, decoder.cache.step

    def counted(state, rows, judging=False):
        kv, window = step(state, rows, judging)
        if kv is None or kv.recording:
            counter["n"] += int(state.win_lo < state.lo)
        else:
            counter["n"] += int(int(kv.computed(1, state.x.device)[0]) < state.lo)
        return kv, window

    decoder.cache.step = counted
    return counter


def decode_run(args: argparse.Namespace, cache: str, policy_name: str) -> dict[str, float]:
    """One configuration in this process: tokens/s, forwards, head share, peak memory."""
    from hydra.utils import instantiate

    from backplay_exp.heads.transformer import CorrectionHead
    from backplay_exp.samplers.decoder import Decoder
    from backplay_exp.samplers.stop import StopRule

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        random_llada.write_config(Path(tmp), args.d_model, args.n_layers, args.vocab)
        backbone = random_llada.build(Path(tmp))
    head = CorrectionHead(
        d_in=backbone.hidden_size, d_head=args.head_width, n_layers=2, n_heads=4,
        mlp_ratio=2.0, conv_kernel=11, rope_base=10000.0,
    ).eval()  # fmt: skip
    policy = instantiate(OmegaConf.load(CONF / "remask" / f"{policy_name}.yaml"))

    def cache_policy():
        node = OmegaConf.load(CONF / "sampler" / "cache" / f"{cache}.yaml")
        if "refresh_on_judge" in node:
            node.refresh_on_judge = args.cache_refresh == "judge"
        for option in args.cache_set:  # e.g. fresh_judge=true, for the caches that have it
            key, value = option.split("=", 1)
            if key in node:
                node[key] = yaml.safe_load(value)
        return instantiate(node)

    decoder = Decoder(
        policy, args.gen, args.block, tokens_per_step=args.k, cache=cache_policy(),
        stop=StopRule(early_stop=False),
    )  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(6, 500, (args.batch, args.prompt), generator=gen)
    warmup = Decoder(policy, args.block, args.block, tokens_per_step=args.k, cache=cache_policy())
    warmup.generate(backbone, prompt, head=head, generator=gen)  # first-call costs, untimed
    forward, in_head = {"s": 0.0, "n": 0}, {"s": 0.0, "n": 0}
    backbone.decode = timed(backbone.decode, forward)
    head.forward = timed(head.forward, in_head)
    window = count_window_steps(decoder)
    before = reset_peak()
    state, walls = gen.get_state(), []
    for _ in range(args.repeats):  # the same decode each time (the generator restored)
        gen.set_state(state)
        start = time.perf_counter()
        out = decoder.generate(backbone, prompt, head=head, generator=gen)
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)
    peak = status_kb("VmHWM") * 1024
    forwards = forward["n"] // args.repeats
    return {
        "tokens_per_s": args.batch * args.gen / wall,
        "wall_s": wall,
        "wall_s_each": walls,
        "forwards": forwards,
        "nfe_mean": out.nfe.float().mean().item(),
        "s_per_step": wall / forwards,
        "s_per_problem": wall / args.batch,
        "head_share": in_head["s"] / sum(walls),
        "window_share": window["n"] / forward["n"],
        "peak_mib": (peak - before) / 2**20,
        "remasks_mean": out.remasks.float().mean().item(),
    }


def step_memory_run(args: argparse.Namespace, windowed: bool) -> dict[str, float]:
    """Peak memory of one decoding step (forward + proposal) at LLaDA's vocabulary size."""
    from backplay_exp.samplers.select import propose_tokens

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        random_llada.write_config(Path(tmp), 64, 2, 126_464)
        backbone = random_llada.build(Path(tmp))
    total = args.prompt + args.gen
    x = torch.randint(6, 500, (args.batch, total), generator=torch.Generator().manual_seed(0))
    lo = args.prompt + args.gen // 2  # a block in the middle of the response
    window = (lo, lo + args.block) if windowed else (0, total)
    before = reset_peak()
    with torch.no_grad():
        logits = backbone.decode(x, None, window).logits
        propose_tokens(logits, 0.0, None, backbone.mask_id)
    return {"peak_mib": (status_kb("VmHWM") * 1024 - before) / 2**20, "positions": window}


def in_subprocess(args: argparse.Namespace, *extra: str) -> dict:
    """Run this script with `extra` in a fresh process; its JSON answer."""
    argv = [sys.executable, __file__, *sys.argv[1:], *extra]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Command line: run every configuration in its own process, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--n-layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32_000)
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--head-width", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="time each configuration's decode this many times; report the median",
    )  # fmt: skip
    parser.add_argument("--cache-refresh", choices=("block", "judge"), default="block")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument("--caches", nargs="+", choices=CACHES, default=list(CACHES))
    parser.add_argument(
        "--cache-set", nargs="*", default=[], metavar="KEY=VALUE",
        help="cache options, e.g. fresh_judge=true head_cache=false (where a cache has them)",
    )  # fmt: skip
    parser.add_argument("--step-memory", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--window", choices=("yes", "no"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(decode_run(args, *args.run)))
        return
    if args.window:
        print(json.dumps(step_memory_run(args, args.window == "yes")))
        return
    record: dict = {"args": {k: v for k, v in vars(args).items() if k != "out"}}
    lines = []
    if args.step_memory:
        full, win = (in_subprocess(args, "--window", w) for w in ("no", "yes"))
        record |= {"full_canvas": full, "windowed": win}
        lines.append(
            f"one step at vocabulary 126,464, batch {args.batch}, {args.prompt + args.gen} "
            f"positions: full-canvas {full['peak_mib']:.0f} MiB, windowed ({args.block} "
            f"positions) {win['peak_mib']:.0f} MiB = {win['peak_mib'] / full['peak_mib']:.3f}x"
        )
    else:
        lines += [
            "| policy | cache | tokens/s | s / problem | s / step | forwards | head share | "
            "window steps | peak MiB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for policy in args.policies:
            for cache in args.caches:
                r = in_subprocess(args, "--run", cache, policy)
                record[f"{policy}/{cache}"] = r
                lines.append(
                    f"| {policy} | {cache} | {r['tokens_per_s']:.2f} | {r['s_per_problem']:.2f} | "
                    f"{r['s_per_step']:.3f} | {r['forwards']} | {100 * r['head_share']:.1f}% | "
                    f"{100 * r['window_share']:.0f}% | {r['peak_mib']:.0f} |"
                )
                print(lines[-1], flush=True)
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
