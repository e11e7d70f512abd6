#!/usr/bin/env bash
# Table 2 (LLaDA-8B, MBPP): k=1..4.
# PARTITION=gpu ACCOUNT=myproj bash launch/mbpp_tokens_sweep.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" mbpp_tokens_sweep "$@"
