"""Entry point: `python -m backplay_exp [+experiment=NAME] [group=option ...] [key=value ...]`.

Composes the config, seeds, and calls the task (`task=sft|eval|...`). See README.md.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from backplay_exp.tasks.runner import run_task


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run the configured task and return the sweeper's objective, if one is named."""
    metrics = run_task(cfg)
    objective = cfg.get("objective")
    return metrics.get(objective) if objective else None


if __name__ == "__main__":
    main()
