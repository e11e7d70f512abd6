"""Shuffled training batches that resume mid-epoch exactly where a checkpoint left them.

A stage resumed from a checkpoint (after a kill, or a SLURM preemption) must go on with the
batches the uninterrupted run would have seen. A plain shuffled DataLoader cannot: Lightning
restarts its epoch from a fresh permutation ("resuming from a checkpoint that ended before the
epoch ended ... your dataloader is not resumable"). `shuffled_loader` builds the same
DataLoader as `DataLoader(shuffle=True, generator=g)` (the same sampler over the same
generator, so an uninterrupted run draws exactly what it drew before) and adds Lightning's
`state_dict` / `load_state_dict` protocol: the shuffling generator's state when the epoch's
order was drawn, and how many of its batches were trained (`mark_trained`, told by the
checkpointing callback, since Lightning's fetcher reads ahead of training). Resumed, the
epoch's order is drawn again from that state and the trained batches are skipped as index
lists, without loading their data. (torchdata's StatefulDataLoader does this in general; it is
not a dependency here, and its count would include Lightning's prefetched batch.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler


class ResumableBatchSampler(BatchSampler):
    """A BatchSampler that records its epoch's shuffling state and can skip trained batches.

    Works over any sampler; over one with a `generator` (RandomSampler) it also restores
    that generator, so a resumed epoch has the interrupted epoch's order.
    """

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.epoch_state: torch.Tensor | None = None  # the generator when this epoch began
        self.trained = 0  # batches of this epoch trained so far
        self._resume: tuple[torch.Tensor | None, int] | None = None

    def __iter__(self) -> Iterator[list[int]]:
        generator: torch.Generator | None = getattr(self.sampler, "generator", None)
        skip = 0
        if self._resume is not None:
            state, skip = self._resume
            self._resume = None
            if generator is not None and state is not None:
                generator.set_state(state)
        self.epoch_state = generator.get_state() if generator is not None else None
        self.trained = skip
        batches = super().__iter__()
        for _ in range(skip):
            next(batches, None)
        yield from batches

    def resume(self, state: dict[str, Any]) -> None:
        """Make the next epoch the saved one, from the batch after the last trained one."""
        self._resume = (state.get("generator"), int(state.get("batches", 0)))


class ResumableLoader(DataLoader):
    """A DataLoader over a `ResumableBatchSampler` that Lightning checkpoints and restores."""

    def mark_trained(self, batches: int) -> None:
        """Record that `batches` of the current epoch have been trained (before a save)."""
        if isinstance(self.batch_sampler, ResumableBatchSampler):
            self.batch_sampler.trained = batches

    def state_dict(self) -> dict[str, Any]:
        """The epoch's shuffling state and its trained batches (saved in the checkpoint)."""
        sampler = self.batch_sampler
        if not isinstance(sampler, ResumableBatchSampler):  # re-wrapped by a strategy
            return {}
        return {"generator": sampler.epoch_state, "batches": sampler.trained}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the saved epoch at its next untrained batch (called before iterating)."""
        if state and isinstance(self.batch_sampler, ResumableBatchSampler):
            self.batch_sampler.resume(state)


def shuffled_loader(
    dataset: Dataset,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool = False,
    **kwargs: Any,
) -> ResumableLoader:
    """`DataLoader(dataset, batch_size, shuffle=True, generator=generator, drop_last)`, resumable.

    The same draws from `generator` as that DataLoader: an uninterrupted run is unchanged.
    """
    assert isinstance(dataset, Sized)
    sampler = RandomSampler(dataset, generator=generator)
    batches = ResumableBatchSampler(sampler, batch_size, drop_last)
    return ResumableLoader(dataset, batch_sampler=batches, generator=generator, **kwargs)
