"""Sweeps on a cluster: the submitit launchers' submission, job watching and failure records.

The Hydra plugin classes live in `hydra_plugins/backplay_exp_launcher/` (Hydra only loads
launchers from the `hydra_plugins` namespace); what they do is here. docs/cluster.md.
"""
