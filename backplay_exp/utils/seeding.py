"""The randomness a decoding batch is drawn with: seeded by the job's seed and the batch's index.

Any rank, any harness: `task=eval` (`tasks/eval.py`, whichever rank decodes the batch) and the
lm-eval model (`harness/model.py`) share it, so the same batch decodes to the same tokens in both.
"""

from __future__ import annotations

import torch


def batch_generator(seed: int, index: int, device: torch.device | str) -> torch.Generator:
    """The generator that batch `index` of a job seeded `seed` is decoded with."""
    return torch.Generator(device).manual_seed(seed * 1_000_003 + index)
