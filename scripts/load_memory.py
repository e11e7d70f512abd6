"""Peak resident memory of loading a sharded bf16 checkpoint natively, against its weights' bytes.

    python scripts/load_memory.py                     # ~200M-parameter LLaDA-shaped random model
    python scripts/load_memory.py --d-model 512 --n-layers 4 --shard-size 20MB

Writes a random checkpoint of LLaDA's architecture in the published layout (config.json, bf16
safetensors shards + index, the fixture's tokenizer) into a temporary directory, then loads it
with `LLaDABackbone` in a fresh process and reports the peak resident set size the load added
(VmHWM after, minus VmRSS before; the peak is reset first where Linux allows) divided by the
bytes of the weights. A loader that held two copies of the weights would read about 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import random_llada

from backplay_exp.backbones.llada import LLaDABackbone


def make_checkpoint(
    out: Path, d_model: int, n_layers: int, vocab: int, shard_size: str, seed: int = 0
) -> int:
    """Write a random bf16 LLaDA-shaped checkpoint into `out`; return its weights' bytes."""
    from backplay_exp.backbones.native.checkpoint import save_published

    config = random_llada.write_config(out, d_model, n_layers, vocab, mlp_ratio=4.0)
    model = random_llada.build(out, dtype="bfloat16", seed=seed).model
    state = {LLaDABackbone.keymap.to_published(k): v for k, v in model.state_dict().items()}
    save_published(state, config, out, source=None, max_shard_size=shard_size)
    return sum(v.numel() * v.element_size() for v in state.values())


def status_kb(field: str) -> int:
    """A `/proc/self/status` field in kB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(path: Path) -> dict[str, float]:
    """Load `path` in this process; the resident memory the load added (bytes)."""
    import torch  # noqa: F401  (imports first: their memory is not the load's)

    with contextlib.suppress(OSError):  # reset the peak to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    before = status_kb("VmRSS")
    backbone = LLaDABackbone(name_or_path=str(path), dtype="bfloat16", tap_layer=-2)
    loaded = status_kb("VmHWM")
    # safetensors may hand out tensors backed by the mapped file, paged in on first use: read
    # every weight once (as a forward pass would) so that the figure counts them all
    checksum = sum(float(p.sum()) for p in backbone.parameters())
    peak = status_kb("VmHWM")
    return {
        "params": sum(p.numel() for p in backbone.parameters()),
        "rss_before": before * 1024,
        "load_added": (loaded - before) * 1024,
        "peak_added": (peak - before) * 1024,
        "checksum": checksum,
    }


def run(d_model: int, n_layers: int, vocab: int, shard_size: str) -> dict[str, float]:
    """Make a checkpoint, measure its load in a fresh process, return the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "ckpt"
        weights = make_checkpoint(ckpt, d_model, n_layers, vocab, shard_size)
        shards = len(list(ckpt.glob("*.safetensors")))
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(ckpt)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
    return figures | {
        "weights_bytes": weights,
        "shards": shards,
        "ratio": figures["peak_added"] / weights,
    }


def main() -> None:
    """Command line: make, load, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d-model", type=int, default=1024)
    parser.add_argument("--n-layers", type=int, default=10)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--shard-size", default="100MB")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure)))
        return
    f = run(args.d_model, args.n_layers, args.vocab, args.shard_size)
    print(
        f"{f['params'] / 1e6:.1f}M parameters, bf16 weights {f['weights_bytes'] / 2**20:.0f} MiB "
        f"in {f['shards']} shards; peak resident memory added by the load "
        f"{f['load_added'] / 2**20:.0f} MiB, and once every weight was read "
        f"{f['peak_added'] / 2**20:.0f} MiB = {f['ratio']:.2f}x the weights"
    )


if __name__ == "__main__":
    main()
