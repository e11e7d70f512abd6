#!/usr/bin/env bash
# The embedded paper: every table's toy counterpart over training seeds, on this machine, then
# one combined report (<out>/report.md: the claims C1-C7 with their intervals, then each table).
# Usage: bash launch/toy_paper.sh [out_dir] [extra Hydra overrides...]
# Stages (SFT models, heads, joint models, T2T editors) are cached: a rerun resumes, and sweeps
# share what they can (the tokens sweep's SFT models and heads serve Tables 1, 6-7 and 8).
set -euo pipefail
out="${1:-multirun/toy_paper}"
shift || true
run() {  # experiment, sub-directory, overrides...
  python -m backplay_exp "+experiment=$1" "hydra.sweep.dir=$out/$2" "${@:3}"
}
run toy_tokens_sweep tokens "$@"
# the heads' held-out AUROC / AP (claim C6): the cached head stages, reported one job per seed
run toy_tokens_sweep heads task=head remask=backplay_toy sampler.tokens_per_step=1 "$@"
run toy_table1 table1 "$@"
run toy_artifacts artifacts "$@"
run toy_random_remask random_remask "$@"
run toy_t2t t2t "$@"
python -m backplay_exp.report.claims "$out"
# BackPlay at cached speed: the tokens and random-remasking sweeps again with the lazy window
# cache (sampler/cache=lazy; evals only, the stages above are reused); their claims C1, C2, C5
# in <out>/lazy/claims.md
run toy_tokens_sweep lazy/tokens sampler/cache=lazy "$@"
run toy_random_remask lazy/random_remask sampler/cache=lazy "$@"
python -m backplay_exp.report.claims "$out/lazy"
