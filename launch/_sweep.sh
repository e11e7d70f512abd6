#!/usr/bin/env bash
# Run one paper table on SLURM: train the shared stages once, then the sweep, then the report.
# Usage: launch/_sweep.sh <experiment> [extra Hydra overrides...]
# Set PARTITION / ACCOUNT (or edit conf/hydra/launcher/slurm_gpu.yaml); BACKPLAY_CACHE_DIR must
# be on a filesystem every node sees. Each step blocks until its SLURM jobs finish (submitit),
# so run this inside tmux/screen on a login node. Re-running after a failure resumes.
set -euo pipefail
exp="$1"; shift
launcher=(hydra/launcher=slurm_gpu "hydra.launcher.partition=${PARTITION:-null}"
          "hydra.launcher.account=${ACCOUNT:-null}")
export BACKPLAY_CACHE_DIR="${BACKPLAY_CACHE_DIR:-$PWD/cache}"
# 1. the stages the sweep's jobs share: the same sweep with task=sft / head / joint, one job at
#    a time, so the first job of each distinct stage trains it and the others find it cached
stages=(sft head)
[[ "$exp" == table1_* ]] && stages+=(joint)
for task in "${stages[@]}"; do
  python -m backplay_exp "+experiment=$exp" "task=$task" "${launcher[@]}" \
    hydra.launcher.array_parallelism=1 "$@"
done
# 2. the sweep itself (one job per point; the report is written when all have finished)
python -m backplay_exp "+experiment=$exp" "${launcher[@]}" "$@"
