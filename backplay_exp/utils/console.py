"""What the console shows: known-harmless third-party warnings, filtered where they arise.

Only warnings that say nothing about this run are filtered, each by its exact message and
category, and only around the call that raises them; every other warning still shows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Lightning 2.6's CombinedLoader builds a torch `LeafSpec`, which torch 2.13 deprecates (a
# Lightning-torch version mismatch; nothing a config of ours can change)
LEAFSPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# Lightning's reminder that modules in eval mode at fit start may be a mistake: a frozen
# backbone is in eval mode on purpose (its dropout off, METHOD.md section 5)
EVAL_MODE = r"Found \d+ module\(s\) in eval mode at the start of training"
# Lightning's hint, wherever SLURM's `srun` is installed (a login node, the local test cluster
# of scripts/slurm_local.sh), that a process srun did not start may be a mistake: the stages
# and evals run here are one process on purpose, and the SLURM launcher starts its jobs with
# srun (conf/hydra/launcher/slurm_gpu.yaml), where Lightning does not say it
SRUN_HINT = r"The `srun` command is available on your system but is not used"


@contextmanager
def srun_hint_filtered() -> Iterator[None]:
    """Filter Lightning's srun hint inside the block (a Trainer or Fabric is built there)."""
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SRUN_HINT, category=PossibleUserWarning)
        yield


@contextmanager
def fit_warnings(frozen_modules: bool) -> Iterator[None]:
    """Filter Lightning's known-harmless fit warnings (and its srun hint) inside the block.

    Args:
        frozen_modules: The module keeps frozen parts in eval mode on purpose, so Lightning's
            eval-mode reminder is filtered too.
    """
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    with warnings.catch_warnings(), srun_hint_filtered():
        warnings.filterwarnings("ignore", message=LEAFSPEC, category=FutureWarning)
        if frozen_modules:
            warnings.filterwarnings("ignore", message=EVAL_MODE, category=PossibleUserWarning)
        yield
