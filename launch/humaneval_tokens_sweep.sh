#!/usr/bin/env bash
# Table 3 (LLaDA-8B, HumanEval): k=1..4.
# PARTITION=gpu ACCOUNT=myproj bash launch/humaneval_tokens_sweep.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" humaneval_tokens_sweep "$@"
