#!/usr/bin/env bash
# Table 8 (GSM8K): random remasking vs BackPlay.
# PARTITION=gpu ACCOUNT=myproj bash launch/gsm8k_random_remask.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" gsm8k_random_remask "$@"
