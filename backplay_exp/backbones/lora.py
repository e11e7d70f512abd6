"""LoRA on a backbone (PRISM-style joint ablation, the T2T editor; METHOD.md sections 5 and 7).

`apply_lora` injects `peft` LoRA adapters into the named linear layers of any backbone (tiny,
SMDM or a Hugging Face adapter) in place and leaves only the adapters trainable. `merge_lora`
folds them back into the base weights and removes the wrappers, so the backbone's state dict has
its original keys again and `Backbone.save` / `load_backbone` round-trip it. Call it before
saving a LoRA-trained backbone (the Hugging Face adapters refuse to save unmerged adapters).

Target module names per backbone: tiny/SMDM `["qkv", "attn_out", "gate_up", "down"]`;
LLaDA `["q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"]`;
Llama/Qwen/Dream `["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from backplay_exp.backbones.base import Backbone


def apply_lora(backbone: Backbone, config: Mapping[str, Any] | Any) -> Backbone:
    """Inject LoRA adapters into `backbone` in place; only the adapters stay trainable.

    Args:
        backbone: Any backbone.
        config: A `peft.LoraConfig`, or its keyword arguments (`r`, `lora_alpha`,
            `lora_dropout`, `target_modules`, ...).

    Returns:
        The same backbone object.

    Raises:
        ValueError: if no module matched `target_modules`.
    """
    from peft import LoraConfig, inject_adapter_in_model

    lora = config if isinstance(config, LoraConfig) else LoraConfig(**dict(config))
    try:
        inject_adapter_in_model(lora, backbone)
    except ValueError as err:
        raise ValueError(
            f"LoRA target_modules={lora.target_modules} matched nothing in "
            f"{type(backbone).__name__}; see backplay_exp/backbones/lora.py for the names"
        ) from err
    for name, param in backbone.named_parameters():
        param.requires_grad_("lora_" in name)
    return backbone


def lora_modules(backbone: nn.Module) -> list[str]:
    """Names of the modules that carry LoRA adapters."""
    from peft.tuners.lora import LoraLayer

    return [name for name, module in backbone.named_modules() if isinstance(module, LoraLayer)]


def has_lora(backbone: nn.Module) -> bool:
    """Whether LoRA adapters were injected into `backbone`."""
    return any("lora_" in name for name, _ in backbone.named_parameters())


def merge_lora(backbone: Backbone) -> Backbone:
    """Fold every LoRA adapter into its base weight and put the plain layer back, in place.

    The merged backbone computes what the adapted one computed (up to float rounding); its
    parameters keep their `requires_grad` flags from LoRA training (base weights frozen).
    """
    for name in lora_modules(backbone):
        module = backbone.get_submodule(name)
        module.merge()
        parent_name, _, child = name.rpartition(".")
        parent = backbone.get_submodule(parent_name) if parent_name else backbone
        setattr(parent, child, module.get_base_layer())
    return backbone
