#!/usr/bin/env bash
# Table 7 (GSM8K): LBC vs uniform artifacts.
# PARTITION=gpu ACCOUNT=myproj bash launch/gsm8k_uniform_ablation.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" gsm8k_uniform_ablation "$@"
