"""Several processes for one job: one model replica per GPU (or CPU process).

Two ways in, one code path (Lightning Fabric, the library made for it):

- Launched by the environment: `torchrun --nproc_per_node N -m backplay_exp ...`, or a SLURM job
  with N tasks (`srun`; submitit's `tasks_per_node`, see conf/hydra/launcher/slurm_gpu.yaml).
  Lightning's cluster environments (TorchElastic, SLURM) say which rank this process is; every
  process runs the job function.
- Launched plainly with `task.devices: N > 1`: the job function runs in N processes spawned here
  (Fabric's `ddp_spawn`), gloo on CPU, NCCL on GPUs; the parent waits and returns rank 0's answer.
  If one of them dies, the others are stopped and the job fails (run it again to resume).

A spawned process has no Hydra runtime: the config it gets is resolved first (`resolved`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from backplay_exp.utils.console import srun_hint_filtered


def external_world() -> tuple[int, int]:
    """(world size, nodes) of processes the environment launched; (1, 1) when none did."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():
        world = int(os.environ["WORLD_SIZE"])
        return world, world // int(os.environ.get("LOCAL_WORLD_SIZE", world))
    with srun_hint_filtered():
        slurm = SLURMEnvironment.detect()
    if slurm and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return int(os.environ["SLURM_NTASKS"]), int(os.environ.get("SLURM_NNODES", "1"))
    return 1, 1


def external_rank() -> int:
    """This process's global rank in an environment-launched job (0 otherwise)."""
    if external_world()[0] == 1:
        return 0
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """`cfg` as a plain dict, every interpolation resolved, for the ranks to rebuild.

    Hydra's resolvers exist only in this process, and Lightning copies the arguments of spawned
    processes by walking them (a DictConfig with mandatory `???` values cannot be walked).
    """
    return OmegaConf.to_container(cfg, resolve=True)


def launch(fn: Callable[..., Any], devices: int, *args: Any) -> Any:
    """Run `fn(fabric, *args)` on every rank; rank 0's return value.

    Args:
        fn: The per-rank function; its first argument is the `Fabric` (None in a plain
            one-process run).
        devices: Processes to spawn per node when the environment launched none.
        *args: Picklable arguments (a spawned process gets copies).
    """
    world, nodes = external_world()
    if world == 1 and devices == 1:
        return fn(None, *args)
    from lightning.fabric import Fabric

    accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    with srun_hint_filtered():
        if world > 1:  # the processes exist already: join them
            fabric = Fabric(
                accelerator=accelerator, devices=world // nodes, num_nodes=nodes, strategy="ddp"
            )
        else:
            fabric = Fabric(accelerator=accelerator, devices=devices, strategy="ddp_spawn")
    return fabric.launch(fn, *args)
