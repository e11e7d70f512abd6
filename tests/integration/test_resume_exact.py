"""A stage stopped by a preemption signal and resumed trains what the uninterrupted run did.

The signal is handled as on SLURM: a handler named like submitit's requeue handler exits the
process; the stage holds it to the next step boundary and saves `last.ckpt` there
(tasks/checkpoint.py). The resumed run starts at that step, restores the random generators
and the loader's place in its epoch (data/resumable.py), and ends in bit-identical weights.
"""

import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from safetensors.torch import load_file

from backplay_exp.tasks.registry import stage_dir
from backplay_exp.tasks.runner import run_task

# 512 / 16 = 32 batches an epoch: 40 steps cross an epoch boundary
STAGE = ["task=sft", "sft.max_steps=40", "sft.checkpoint_every=7", "sft.val_check_interval=5"]


def checkpoint_and_try_requeue(signum, frame):  # the name of submitit's handler
    raise SystemExit(-1)


def weights(cfg) -> dict[str, torch.Tensor]:
    return load_file(stage_dir(cfg, "sft") / "backbone" / "model.safetensors")


def signal_after_first_checkpoint(cache: Path) -> threading.Thread:
    def send():
        deadline = time.monotonic() + 120
        while not list(cache.glob("sft/*/checkpoints/last.ckpt")):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGUSR2)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_preempted_stage_resumes_to_the_weights_of_an_uninterrupted_one(
    compose_cfg, tmp_path, caplog
):
    straight = compose_cfg(*STAGE)
    run_task(straight)

    cfg = compose_cfg(*STAGE)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(tmp_path / "preempted")
    caplog.set_level(logging.INFO, logger="backplay_exp.tasks.checkpoint")
    previous = signal.signal(signal.SIGUSR2, checkpoint_and_try_requeue)
    try:
        sender = signal_after_first_checkpoint(tmp_path / "preempted")
        with pytest.raises(SystemExit):
            run_task(cfg)
        sender.join()
        assert not (stage_dir(cfg, "sft") / "done.json").exists()
        run_task(cfg)  # the requeued job
    finally:
        signal.signal(signal.SIGUSR2, previous)

    lines = [r.getMessage() for r in caplog.records]
    preempted = next(m for m in lines if m.startswith("preempted"))
    stop = int(preempted.split("..")[1].split()[0])
    assert 7 <= stop < 40, preempted
    assert f"resumed at step {stop} from" in " ".join(lines)
    # each run trained its own steps: 0..stop, then stop..40
    saved = f"checkpoint saved at step {stop}"
    assert preempted == f"preempted: trained steps 0..{stop} in this run, {saved}"
    assert f"trained steps {stop}..40 in this run" in lines
    a, b = weights(straight), weights(cfg)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
