"""A training stage's checkpoint: every N steps and on a preemption signal, between two steps.

Lightning's ModelCheckpoint saves at the end of a step, before that step's validation runs;
resumed from there, Lightning skips the validation and the random draws it made, and the run
no longer repeats the uninterrupted one. `StepCheckpoint` saves `last.ckpt` at the *start* of
the step after the N-th (validation done, no gradient accumulated), with the random number
generators' states and the training loader's position (`data/resumable.py`): resumed, a stage
trains the same batches with the same masks, and ends in the same weights.

On SLURM, submitit's handler of the time-limit signal (USR2, `signal_delay_s` before the
limit) requeues the job and exits at once, wherever training is. While a stage trains, the
signal is held until the next step boundary: the step in flight finishes, `last.ckpt` is
saved there, and then submitit's handler runs. Nothing trained is lost, nothing is trained
twice; each run of the stage logs the steps it trained.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

# the method submitit installs as the handler of its time-limit / preemption signal
SUBMITIT_HANDLER = "checkpoint_and_try_requeue"


def rng_states() -> dict[str, Any]:
    """The states of every random number generator training draws from.

    Only tensors and plain values, which `torch.load(weights_only=True)` (Lightning's) reads.
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what `rng_states` returned."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def submitit_signal() -> signal.Signals | None:
    """The signal whose handler is submitit's requeue handler, if this is a submitit job."""
    for sig in (signal.SIGUSR2, signal.SIGUSR1, signal.SIGTERM, signal.SIGCONT):
        handler = signal.getsignal(sig)
        if getattr(handler, "__name__", "") == SUBMITIT_HANDLER:
            return sig
    return None


class StepCheckpoint(Callback):
    """Saves `path` every `every_n_steps` optimizer steps and on submitit's preemption signal.

    Args:
        path: The checkpoint file (`<stage>/checkpoints/last.ckpt`), replaced atomically.
        every_n_steps: Steps between two saves.
    """

    def __init__(self, path: Path, every_n_steps: int) -> None:
        self.path, self.every_n_steps = Path(path), int(every_n_steps)
        self._rng: dict[str, Any] | None = None  # to restore before the first resumed step
        self._saved_step = -1
        self._first_step = 0  # the step this run started at
        self._signal: signal.Signals | None = None
        self._held: tuple[int, FrameType | None] | None = None
        self._previous: Any = None

    def state_dict(self) -> dict[str, Any]:
        """The generators' states at the save (Lightning stores it in the checkpoint)."""
        return {"rng": rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the saved generators' states for the first step of the resumed run."""
        self._rng = state_dict.get("rng")

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Count the batch about to run as not begun (it is only fetched when this saves).

        Lightning has counted it `ready`; left so, a resumed loop is one batch ahead of its
        data and runs its validations a batch early. With every count equal, Lightning
        resumes as from a checkpoint saved after a step and its validation.
        """
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        for counts in (progress["total"], progress["current"]):
            counts["ready"] = counts["started"] = counts["completed"]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Note where this run starts; hold submitit's signal while the stage trains."""
        self._first_step = self._saved_step = trainer.global_step
        if trainer.global_step > 0:
            log.info("resumed at step %d from %s", trainer.global_step, self.path)
        self._signal = submitit_signal()
        if self._signal is not None and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self._signal, self._hold)

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self._held = (signum, frame)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Between two steps: restore a resumed run's generators, save when due or signalled."""
        if self._rng is not None:
            set_rng_states(self._rng)
            self._rng = None
        if batch_idx % trainer.accumulate_grad_batches:
            return  # inside an accumulation window: no clean point to save at
        loader = trainer.train_dataloader
        if hasattr(loader, "mark_trained"):
            loader.mark_trained(batch_idx)
        step = trainer.global_step
        due = step > 0 and step % self.every_n_steps == 0 and step != self._saved_step
        if due or self._held is not None:
            self.save(trainer)
        if self._held is not None:
            log.info(
                "preempted: trained steps %d..%d in this run, checkpoint saved at step %d",
                self._first_step,
                step,
                step,
            )
            signum, frame = self._held
            previous = self._release()
            previous(signum, frame)  # submitit: requeue the job and exit

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report this run's steps; a signal held past the last step is handled now."""
        log.info("trained steps %d..%d in this run", self._first_step, trainer.global_step)
        if self._held is not None:
            signum, frame = self._held
            self._release()(signum, frame)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Give submitit its handler back, whatever ended the fit."""
        self._release()

    def _release(self) -> Any:
        previous, self._held = self._previous, None
        if self._signal is not None and previous is not None:
            signal.signal(self._signal, previous)
        self._previous = None
        return previous

    def save(self, trainer: L.Trainer) -> None:
        """Write the checkpoint beside `path`, then move it in place (a kill keeps the old one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(str(tmp))
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        trainer.strategy.barrier("checkpoint")
        self._saved_step = trainer.global_step
