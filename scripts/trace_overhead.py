"""Decoder overhead of the trace recorder with tracing off: `Decoder.generate` before and after.

    python scripts/trace_overhead.py                       # tiny backbone, toy prompts, k=4
    python scripts/trace_overhead.py --before HEAD~1 --batch 1 256 --repeats 50
    python scripts/trace_overhead.py remask=backplay_toy sampler/cache=lazy   # any override

"Before" is `backplay_exp/samplers/decoder.py` as it is at git revision `--before` (default
`HEAD`: the last commit, i.e. the decoder without the recorder while the change is uncommitted;
after it is committed, pass the commit before it), loaded beside the working tree's decoder;
both run over the same components, backbone, head, prompts and seed. Each repeat decodes with
both, alternating which goes first, and the script checks that they return the same tokens and
NFE. It reports the median wall time of each and their ratio, for confidence decoding and for
`backplay_toy` (or only the policies given with `--policies`), and, with `--traced`, also the
cost of tracing on (`TraceRecorder` over every row). Weights are random (the cost of a step
does not depend on them), so no stage is trained. Prints a JSON record; `--out FILE` writes it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from backplay_exp.data.collate import encode_prompts
from backplay_exp.samplers.trace.recorder import TraceRecorder

ROOT = Path(__file__).resolve().parents[1]
DECODER = "backplay_exp/samplers/decoder.py"


def decoder_at(revision: str) -> ModuleType:
    """The decoder module as it is at git `revision`, importable as `decoder_before`."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{DECODER}"], cwd=ROOT, check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    spec = importlib.util.spec_from_loader("decoder_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules["decoder_before"] = module
    exec(compile(source, f"{revision}:{DECODER}", "exec"), module.__dict__)
    return module


def measure(args: argparse.Namespace, before: ModuleType, policy: str, batch: int) -> dict:
    """Median wall times of one policy at one batch size, before and after (and traced)."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"remask={policy}", *args.overrides])
    torch.manual_seed(0)
    backbone = instantiate(cfg.backbone).eval()
    remasker = instantiate(cfg.remask)
    head = instantiate(cfg.head, d_in=backbone.hidden_size).eval() if remasker.uses_head else None
    after = instantiate(cfg.sampler, remasker=remasker)
    old = instantiate(
        cfg.sampler, remasker=instantiate(cfg.remask), _target_="decoder_before.Decoder"
    )
    assert type(old).__module__ == before.__name__
    problems = instantiate(cfg.benchmark).problems()
    prompts = [problems[i % len(problems)].prompt for i in range(batch)]
    ids, mask = encode_prompts(backbone.tokenizer, prompts)

    def run(decoder, trace=None):
        generator = torch.Generator().manual_seed(cfg.seed)
        start = time.perf_counter()
        if trace is None:
            out = decoder.generate(backbone, ids, mask, head, generator)
        else:
            out = decoder.generate(backbone, ids, mask, head, generator, trace=trace)
        return time.perf_counter() - start, out

    arms = {"before": lambda: run(old), "after": lambda: run(after)}
    if args.traced:
        arms["after_traced"] = lambda: run(after, TraceRecorder())
    for fn in arms.values():  # first-call costs, untimed
        fn()
    walls: dict[str, list[float]] = {name: [] for name in arms}
    for n in range(args.repeats):
        order = list(arms) if n % 2 == 0 else list(reversed(arms))
        outs = {}
        for name in order:
            wall, outs[name] = arms[name]()
            walls[name].append(wall)
        ref = outs["before"]
        for name, out in outs.items():  # tracing, on or off, changes no token
            assert torch.equal(out.tokens, ref.tokens) and torch.equal(out.nfe, ref.nfe), name
    med = {name: statistics.median(w) for name, w in walls.items()}
    record = {"policy": policy, "batch": batch, "nfe_mean": ref.nfe.float().mean().item()}
    record |= {f"{name}_s": med[name] for name in arms}
    record["after_over_before"] = med["after"] / med["before"]
    if args.traced:
        record["traced_over_before"] = med["after_traced"] / med["before"]
    return record


def main() -> None:
    """Command line: measure each policy at each batch size, print a table and a JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="config overrides (e.g. sampler/cache=lazy)")
    parser.add_argument("--before", default="HEAD", help="git revision of the decoder before")
    parser.add_argument("--policies", nargs="+", default=["confidence", "backplay_toy"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 256])
    parser.add_argument("--k", type=int, default=4, help="sampler.tokens_per_step")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--traced", action="store_true", help="also time tracing on")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.overrides = [f"sampler.tokens_per_step={args.k}", *args.overrides]
    torch.set_num_threads(args.threads)
    before = decoder_at(args.before)
    records = []
    print("| policy | batch | NFE | before s | after s | after / before |")
    print("|---|---|---|---|---|---|")
    for policy in args.policies:
        for batch in args.batch:
            r = measure(args, before, policy, batch)
            records.append(r)
            print(
                f"| {policy} | {batch} | {r['nfe_mean']:.1f} | {r['before_s']:.4f} | "
                f"{r['after_s']:.4f} | {r['after_over_before']:.3f} |",
                flush=True,
            )
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": records}
    print(json.dumps(record))
    if args.out:
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
