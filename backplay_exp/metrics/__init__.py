"""Metrics beyond torchmetrics' (accuracy and NFE live in the eval task)."""
