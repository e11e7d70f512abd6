#!/usr/bin/env bash
# Table 5 (LLaDA-8B, MATH): k=1..4.
# PARTITION=gpu ACCOUNT=myproj bash launch/math_tokens_sweep.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" math_tokens_sweep "$@"
