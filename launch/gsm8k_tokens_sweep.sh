#!/usr/bin/env bash
# Table 4 (LLaDA-8B, GSM8K): k=1..5.
# PARTITION=gpu ACCOUNT=myproj bash launch/gsm8k_tokens_sweep.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" gsm8k_tokens_sweep "$@"
