#!/usr/bin/env bash
# Table 1 (SMDM-1B, GSM8K): SFT vs joint optimisation vs BackPlay at k=2.
# PARTITION=gpu ACCOUNT=myproj bash launch/table1_smdm_gsm8k.sh [overrides...]
exec "$(dirname "$0")/_sweep.sh" table1_smdm_gsm8k "$@"
