"""The block class of this package's transformer, for FSDP's per-block sharding.

`conf/trainer/fsdp.yaml` passes `block_classes()` as Lightning's `auto_wrap_policy` (a set of
classes becomes torch's `ModuleWrapPolicy`): each block of every native backbone (LLaDA, Dream,
SMDM, tiny) is one shard unit, gathered only while it computes. The correction head's blocks are
the same class, so a joint run shards them the same way.
"""

from __future__ import annotations

from torch import nn


def block_classes() -> set[type[nn.Module]]:
    """`{Block}`: one FSDP unit per transformer block."""
    from backplay_exp.transformer.block import Block

    return {Block}
