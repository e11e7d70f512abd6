"""Correction heads that judge committed tokens from the backbone's hidden states."""

from backplay_exp.heads.transformer import CorrectionHead

__all__ = ["CorrectionHead"]
