"""Masking process and losses of masked diffusion LMs."""

from backplay_exp.diffusion.losses import head_bce_loss, sft_loss
from backplay_exp.diffusion.masking import mask_tokens, maskable_positions, sample_mask_prob

__all__ = ["head_bce_loss", "mask_tokens", "maskable_positions", "sample_mask_prob", "sft_loss"]
