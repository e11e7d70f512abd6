"""backplay_exp's submitit launchers (`hydra/launcher=slurm_gpu`, `local`): Hydra's, hardened.

Hydra loads launcher classes only from the `hydra_plugins` namespace, so the classes are
here; what their `launch` does is `backplay_exp/cluster/launch.py`: a refused submission in one
line, job states without SLURM accounting, and a report even when some jobs die.
Hydra imports this module at every start (plugin discovery): it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher


class BackplaySlurmLauncher(SlurmLauncher):
    """One SLURM job per sweep point, through submitit (`conf/hydra/launcher/slurm_gpu.yaml`)."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Submit the sweep's jobs, wait for all of them, return one JobReturn each."""
        from backplay_exp.cluster.launch import launch_sweep

        return launch_sweep(self, job_overrides, initial_job_idx)


class BackplayLocalLauncher(LocalLauncher):
    """The same path as processes on this machine (`conf/hydra/launcher/local.yaml`)."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Start the sweep's jobs, wait for all of them, return one JobReturn each."""
        from backplay_exp.cluster.launch import launch_sweep

        return launch_sweep(self, job_overrides, initial_job_idx)
