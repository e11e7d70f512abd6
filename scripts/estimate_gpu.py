"""Back-of-envelope GPU cost of each paper table: FLOPs from the configs, time at an assumed MFU.

Not a measurement (no GPU was available to this project's CPU machine): training costs 6·N FLOPs
per token for a trained backbone, 2·N for a frozen forward (LBC needs two: the artifact and the
hidden states), plus 6·N_head for the head; decoding costs 2·N per canvas token per NFE.
Steps, batch and lengths come from conf/experiment/base/*.yaml. A second table compares the
GPU-hours a table holds on SLURM with what it uses, before and after the sharded eval. Run:

    python scripts/estimate_gpu.py [--mfu-train 0.4] [--mfu-decode 0.25] [--gen-tokens 256]
"""

from __future__ import annotations

import argparse

H100_BF16 = 989e12  # dense bf16 FLOP/s of one H100 SXM

# parameters: backbone N, head N_head (App. D / Table 11), SFT steps, head steps, global batch,
# training sequence length, evaluation canvas (prompt + gen length), problems, ks, eval arms
TABLES = {
    "T1 SMDM-1B GSM8K": dict(
        n=1.0e9, head=0.09e9, sft=120_000, head_steps=30_000, batch=256, seq=256,
        canvas=100 + 256, problems=1319, ks=[2], arms=4, joint=True,
    ),
    "T2 LLaDA-8B MBPP": dict(
        n=8.0e9, head=0.6e9, sft=1953, head_steps=1953, batch=256, seq=1024,
        canvas=300 + 1024, problems=500, ks=[1, 2, 3, 4], arms=2,
    ),
    "T3 LLaDA-8B HumanEval": dict(
        n=8.0e9, head=0.6e9, sft=1953, head_steps=1953, batch=256, seq=1024,
        canvas=300 + 1024, problems=164, ks=[1, 2, 3, 4], arms=2,
    ),
    "T4 LLaDA-8B GSM8K": dict(
        n=8.0e9, head=0.6e9, sft=1953, head_steps=1953, batch=256, seq=1024,
        canvas=150 + 1024, problems=1319, ks=[1, 2, 3, 4, 5], arms=2,
    ),
    "T5 LLaDA-8B MATH": dict(
        n=8.0e9, head=0.6e9, sft=1953, head_steps=1953, batch=256, seq=1024,
        canvas=150 + 1024, problems=5000, ks=[1, 2, 3, 4], arms=2,
    ),
}  # fmt: skip


def estimate(t: dict, mfu_train: float, mfu_decode: float, gen_tokens: int) -> dict[str, float]:
    """GPU-hours of SFT, head-only, joint (if the table has it), the eval sweep; memory in GB."""
    hour = 3600 * H100_BF16
    tokens = lambda steps: steps * t["batch"] * t["seq"]  # noqa: E731
    sft = 6 * t["n"] * tokens(t["sft"]) / (hour * mfu_train)
    head = (4 * t["n"] + 6 * t["head"]) * tokens(t["head_steps"]) / (hour * mfu_train)
    joint = (14 * t["n"] + 6 * t["head"]) * tokens(t["sft"]) / (hour * mfu_train)
    nfe = sum(gen_tokens / k for k in t["ks"]) * t["arms"] * t["problems"]
    decode = 2 * t["n"] * t["canvas"] * nfe / (hour * mfu_decode)
    return {
        "sft_h": sft,
        "head_h": head,
        "joint_h": joint if t.get("joint") else float("nan"),
        "eval_h": decode,
        # bf16 weights + grads, fp32 master + Adam moments: 16 B per trained parameter
        "sft_mem_gb": 16 * t["n"] / 1e9,
        # frozen bf16 backbone (2 B) + the head trained in full (16 B)
        "head_mem_gb": (2 * t["n"] + 16 * t["head"]) / 1e9,
    }


def allocation(t: dict, e: dict, gpus: int, overhead_min: float) -> dict[str, float]:
    """GPU-hours used and allocated on SLURM, with every job on `gpus` GPUs (an estimate).

    Training jobs use every GPU they hold. The stage steps of launch/_sweep.sh run the whole
    sweep once per stage: one job trains, the others find the stage cached after
    `overhead_min` minutes (each still holding its GPUs). Eval: before the launcher presets,
    an eval job held `gpus` GPUs and decoded on one; with the sharded eval it decodes on all.
    """
    jobs = len(t["ks"]) * t["arms"]
    stages = 3 if t.get("joint") else 2
    train = e["sft_h"] + e["head_h"] + (e["joint_h"] if t.get("joint") else 0.0)
    waiting = stages * (jobs - 1) * gpus * overhead_min / 60
    used = train + e["eval_h"]
    return {
        "used_h": used,
        "before_h": train + waiting + gpus * e["eval_h"],
        "after_h": train + waiting + e["eval_h"],
        "eval_wall_before_h": e["eval_h"] / jobs,  # per eval job, on one GPU
        "eval_wall_after_h": e["eval_h"] / jobs / gpus,
    }


def main() -> None:
    """Print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mfu-train", type=float, default=0.4)
    ap.add_argument("--mfu-decode", type=float, default=0.25)
    ap.add_argument("--gen-tokens", type=int, default=256, help="tokens decoded before EoS")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs per job (conf: 8)")
    ap.add_argument(
        "--overhead-min", type=float, default=5.0, help="minutes a job needs to find a cached stage"
    )
    args = ap.parse_args()
    print(
        "| table | SFT GPU-h | head GPU-h | joint GPU-h | eval sweep GPU-h "
        "| SFT state (GB, before activations) | head-only state (GB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, t in TABLES.items():
        e = estimate(t, args.mfu_train, args.mfu_decode, args.gen_tokens)
        joint = "—" if e["joint_h"] != e["joint_h"] else f"{e['joint_h']:.0f}"
        print(
            f"| {name} | {e['sft_h']:.0f} | {e['head_h']:.0f} | {joint} | {e['eval_h']:.1f} "
            f"| {e['sft_mem_gb']:.0f} | {e['head_mem_gb']:.0f} |"
        )
    print()
    print(
        "| table | GPU-h used | GPU-h allocated, every job on 8 GPUs, eval on 1 (before) "
        "| GPU-h allocated, sharded eval (after) | wall time of one eval job, before -> after (h) |"
    )
    print("|---|---|---|---|---|")
    for name, t in TABLES.items():
        a = allocation(t, estimate(t, args.mfu_train, args.mfu_decode, args.gen_tokens),
                       args.gpus, args.overhead_min)  # fmt: skip
        print(
            f"| {name} | {a['used_h']:.0f} | {a['before_h']:.0f} | {a['after_h']:.0f} "
            f"| {a['eval_wall_before_h']:.1f} -> {a['eval_wall_after_h']:.2f} |"
        )


if __name__ == "__main__":
    main()
