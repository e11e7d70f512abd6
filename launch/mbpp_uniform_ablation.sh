#!/usr/bin/env bash
# Table 6 (MBPP): LBC vs uniform artifacts.
# PARTITION=gpu ACCOUNT=myproj bash launch/mbpp_uniform_ablation.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" mbpp_uniform_ablation "$@"
