"""The editor (config group `sampler/editor`): token-to-token edits of visible tokens.

LLaDA2.1's token editing (METHOD.md section 6, `t2t_edit`): each step, a visible response token of
the current block whose prediction differs from it with probability above `threshold` is
replaced (an edit). An editing block ends only after a step that changed nothing (the editor
has settled) or at the stop rule's step cap, so an editor that always disagrees terminates.

- `NoEditor`: never edits, never holds a block open.
- `ThresholdEditor`: LLaDA2.1's threshold edits (presets `threshold`, `q_mode`, `s_mode`).
"""

from __future__ import annotations

import torch

from backplay_exp.samplers.state import Step


def edit_positions(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    confidence: torch.Tensor,
    editable: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """Tokens to edit: editable, predicted differently, with confidence above the threshold.

    Args:
        x: (b, T) current tokens.
        x_hat: (b, T) the model's prediction at every position.
        confidence: (b, T) probability of that prediction.
        editable: (b, T) bool, the visible response tokens the editor may touch.
        threshold: The edit threshold.

    Returns:
        (b, T) bool.
    """
    return editable & (x_hat != x) & (confidence > threshold)


class NoEditor:
    """No token edits."""

    name = "none"

    def select(self, step: Step, editable: torch.Tensor) -> torch.Tensor:
        """(b, T) bool, the tokens to replace by their prediction: none."""
        return torch.zeros_like(editable)

    def unsettled(self, commit: torch.Tensor, edit: torch.Tensor) -> torch.Tensor:
        """(b,) bool, rows whose block stays open after this step: none (masks decide)."""
        return torch.zeros(commit.shape[0], dtype=torch.bool, device=commit.device)


class ThresholdEditor(NoEditor):
    """LLaDA2.1's threshold edits (T2T).

    Args:
        threshold: A visible token of the block is replaced by the prediction when that differs
            from it with probability above this (a probability in [0, 1)).
        mode: The preset's name (LLaDA2.1's S-Mode / Q-Mode), shown in the report.
    """

    def __init__(self, threshold: float, mode: str | None = None) -> None:
        if threshold is None or not 0 <= threshold < 1:
            raise ValueError(f"sampler.editor.threshold must be in [0, 1), got {threshold}")
        self.threshold, self.mode = threshold, mode
        self.name = f"t2t_edit({mode})" if mode else "t2t_edit"

    def select(self, step: Step, editable: torch.Tensor) -> torch.Tensor:
        """(b, T) bool, editable tokens predicted otherwise with confidence above threshold."""
        return edit_positions(step.x, step.x_hat, step.conf, editable, self.threshold)

    def unsettled(self, commit: torch.Tensor, edit: torch.Tensor) -> torch.Tensor:
        """(b,) bool, rows that committed or edited this step: their block takes another."""
        return commit.any(-1) | edit.any(-1)
