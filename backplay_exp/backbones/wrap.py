"""The block classes of this package's transformers, for FSDP's per-block sharding.

`conf/trainer/fsdp.yaml` passes `block_classes()` as Lightning's `auto_wrap_policy` (a set of
classes becomes torch's `ModuleWrapPolicy`): each block of the native LLaDA/Dream and of
`tiny`/SMDM is one shard unit, gathered only while it computes. The correction head's blocks
are `layers.Block` too, so a joint run shards them the same way.
"""

from __future__ import annotations

from torch import nn


def block_classes() -> set[type[nn.Module]]:
    """`{DecoderBlock, Block}`: one FSDP unit per transformer block."""
    from backplay_exp.backbones.native.model import DecoderBlock
    from backplay_exp.layers import Block

    return {DecoderBlock, Block}
