"""scripts/decode_bench.py on a small random model: the counts its table reports."""

from __future__ import annotations

import argparse

from tests.scripts import script_module

SMALL = dict(
    d_model=64, n_layers=2, vocab=1000, prompt=32, gen=32, block=8, k=2, batch=2, head_width=32,
    threads=1, cache_refresh="block", repeats=2,
)  # fmt: skip


def run(cache: str, policy: str, *cache_set: str) -> dict:
    with script_module("decode_bench") as bench:
        sys_path = bench.sys.path[:]  # the script puts scripts/ on the path for random_llada
        try:
            return bench.decode_run(
                argparse.Namespace(**SMALL, cache_set=list(cache_set)), cache, policy
            )
        finally:
            bench.sys.path[:] = sys_path


def test_repeats_time_the_same_decode_and_count_one():
    conf = run("dual", "confidence")
    assert len(conf["wall_s_each"]) == 2
    assert conf["forwards"] == 4 * 4  # 4 blocks of 8 at 2 tokens per step
    lazy = run("lazy", "backplay")
    assert lazy["forwards"] >= 16 and 0 < lazy["window_share"] <= 1
    off = run("lazy", "backplay", "readers=0")
    # a random model's first-layer attention reads no change above the default share: one decode
    assert off["forwards"] == lazy["forwards"] and off["remasks_mean"] == lazy["remasks_mean"]
