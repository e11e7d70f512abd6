"""Thin LightningModules: SFT, head-only, joint (and the T2T editor)."""
